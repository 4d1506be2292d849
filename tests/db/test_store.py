"""db.store on both backends: stories, choosing, listeners, the generation queue."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db import store
from db.models import (
    GenerationRequest,
    Keyword,
    Listener,
    ModelRecord,
    PlayHistory,
    RequestStatus,
    Story,
    StoryKeyword,
    StoryKeywordPair,
)
from db.store import StoryDraft


def add(
    session: Session,
    title: str,
    keywords: list[str],
    *,
    status: str = "approved",
    locale: str = "en-US",
    text: str | None = None,
) -> Story:
    story = store.add_story(
        session,
        StoryDraft(
            title=title,
            text=text or f"Once upon a time there was {title}. The end.",
            keywords=keywords,
            locale=locale,
            review_status=status,
        ),
    )
    session.flush()
    return story


# --------------------------------------------------------------------------- stories


def test_add_story_normalises_keywords_and_counts_words(db_session: Session) -> None:
    story = add(db_session, "Dragons and Mice", ["Dragons", "the mice", "dragon"], text="a b c d")
    assert story.keyword_lemmas == ["dragon", "mouse"]
    assert story.word_count == 4
    assert len(story.content_hash) == 64


def test_add_story_is_idempotent_on_content(db_session: Session) -> None:
    first = add(db_session, "The Owl", ["owl"], text="Hoot  hoot.")
    again = add(db_session, "the owl ", ["cat"], text="hoot hoot.")
    assert again.id == first.id
    assert db_session.scalar(select(func.count()).select_from(Story)) == 1
    assert again.keyword_lemmas == ["owl"]  # the existing story is returned unchanged


@pytest.mark.parametrize(
    "title",
    [
        "Émilie et le dragon 🐉",
        "Ünïcödé 🌙✨ night",
        "Ça va, Zoë? 😴",
        "小さな竜",
        "O'Hare's \"quotes\"",
    ],
)
def test_unicode_titles_round_trip(db_session: Session, title: str) -> None:
    story = add(db_session, title, ["dragon"], text=f"{title} slept. 💤")
    db_session.expire_all()
    view = store.get_story(db_session, story.id)
    assert view is not None
    assert view.title == title
    assert view.text == f"{title} slept. 💤"


def test_invalid_drafts_are_refused(db_session: Session) -> None:
    with pytest.raises(ValueError, match="title"):
        store.add_story(db_session, StoryDraft(title=" ", text="x"))
    with pytest.raises(ValueError, match="source"):
        store.add_story(db_session, StoryDraft(title="t", text="x", source="stolen"))
    with pytest.raises(ValueError, match="review_status"):
        store.add_story(db_session, StoryDraft(title="t", text="x", review_status="maybe"))


def test_only_approved_stories_are_served(db_session: Session) -> None:
    pending = add(db_session, "Pending", ["owl"], status="pending")
    rejected = add(db_session, "Rejected", ["owl"], status="rejected")
    assert store.get_story(db_session, pending.id) is None
    assert store.get_story(db_session, rejected.id) is None
    assert store.get_story(db_session, pending.id, approved_only=False) is not None
    choice = store.choose_story(db_session, ["owl"], None, "en-US")
    assert choice.story is None and choice.match == "none"


def test_review_updates_denormalised_links(db_session: Session) -> None:
    story = add(db_session, "Waiting", ["owl", "moon"], status="pending")
    assert {link.approved for link in story.links} == {False}
    store.review_story(db_session, story.id, "approved")
    db_session.expire_all()
    flags = db_session.scalars(
        select(StoryKeyword.approved).where(StoryKeyword.story_id == story.id)
    ).all()
    assert flags == [True, True]
    assert store.choose_story(db_session, ["owl"], None, "en-US").story.id == story.id
    store.review_story(db_session, story.id, "rejected", "too scary")
    db_session.expire_all()
    assert db_session.get(Story, story.id).rejection_reason == "too scary"
    assert store.choose_story(db_session, ["owl"], None, "en-US").match == "none"


def test_review_unknown_story(db_session: Session) -> None:
    with pytest.raises(LookupError):
        store.review_story(db_session, 987654, "approved")


def test_keyword_pairs_follow_the_story(db_session: Session) -> None:
    story = add(db_session, "Three", ["zebra", "apple", "moon"], status="pending")
    pairs = {(p.first_keyword.lemma, p.second_keyword.lemma) for p in story.pairs}
    assert pairs == {("apple", "moon"), ("apple", "zebra"), ("moon", "zebra")}
    assert {(p.approved, p.random_key, p.locale) for p in story.pairs} == {
        (False, story.random_key, "en-US")
    }
    store.review_story(db_session, story.id, "approved")
    db_session.expire_all()
    flags = db_session.scalars(
        select(StoryKeywordPair.approved).where(StoryKeywordPair.story_id == story.id)
    ).all()
    assert flags == [True, True, True]
    assert add(db_session, "One", ["owl"]).pairs == []


def test_choose_three_keywords(db_session: Session) -> None:
    story = add(db_session, "Three", ["zebra", "apple", "moon"])
    add(db_session, "Two", ["zebra", "apple"])
    choice = store.choose_story(db_session, ["moon", "zebras", "apples"], None, "en-US")
    assert (choice.match, choice.story.id) == ("unheard", story.id)


def test_links_copy_random_key_and_locale(db_session: Session) -> None:
    story = add(db_session, "Copy", ["owl"], locale="en-GB")
    link = story.links[0]
    assert (link.locale, link.random_key, link.approved) == ("en-GB", story.random_key, True)


# --------------------------------------------------------------------------- keywords


@pytest.mark.parametrize(
    "special",
    ["o'brien", 'say "hi"', "100%", "50%_off", "snake_case", "back\\slash", "semi;colon--"],
)
def test_sql_special_characters_in_keywords(db_session: Session, special: str) -> None:
    """Quotes, LIKE wildcards and backslashes are data, never SQL: no injection, no wildcards."""
    lemma = store.resolve_keyword(db_session, special)
    assert lemma
    story = add(db_session, f"About {special}", [special])
    other = add(db_session, "Plain", ["100", "50", "snake", "back", "o", "semi"])
    choice = store.choose_story(db_session, [special], None, "en-US")
    assert choice.story is not None
    assert choice.story.id in {story.id, other.id}
    assert lemma in story.keyword_lemmas
    # A raw keyword row with the special characters kept is matched exactly, not as a pattern.
    if lemma != special:
        db_session.add(Keyword(lemma=special))
        db_session.flush()
    assert db_session.scalar(select(Keyword.lemma).where(Keyword.lemma == special)) == special
    assert db_session.scalar(select(func.count()).where(Keyword.lemma == "50%")) == 0


def test_accented_and_plain_keywords_are_distinct(db_session: Session) -> None:
    db_session.add_all([Keyword(lemma="café"), Keyword(lemma="cafe")])
    db_session.flush()
    assert db_session.scalar(select(func.count()).select_from(Keyword)) == 2


def test_synonyms_resolve(db_session: Session) -> None:
    add(db_session, "Cat tale", ["cat"])
    both = add(db_session, "Cat and bat", ["cat", "bat"])
    store.add_synonym(db_session, "cat", "kitties")
    # The pair lookup orders keywords by their real lemma, not by the synonym used.
    choice = store.choose_story(db_session, ["kitty", "bat"], None, "en-US")
    assert (choice.match, choice.story.id) == ("unheard", both.id)
    store.add_synonym(db_session, "bat", "zzbat")
    choice = store.choose_story(db_session, ["zzbat", "kitty"], None, "en-US")
    assert (choice.match, choice.story.id) == ("unheard", both.id)
    assert store.resolve_keyword(db_session, "Kitty") == "cat"
    assert store.resolve_keyword(db_session, "dragons") == "dragon"  # unknown yet: still a lemma
    assert store.resolve_keyword(db_session, "the") is None
    assert store.choose_story(db_session, ["kitty"], None, "en-US").match == "unheard"
    assert store.keyword_catalogue(db_session) == [("bat", ["zzbat"]), ("cat", ["kitty"])]
    with pytest.raises(ValueError):
        store.add_synonym(db_session, "dog", "cats")  # "cat" is a keyword itself
    with pytest.raises(ValueError):
        store.add_synonym(db_session, "cat", "cats")  # same lemma


def test_known_keywords_most_stories_first(db_session: Session) -> None:
    add(db_session, "A", ["owl", "moon"])
    add(db_session, "B", ["owl"])
    add(db_session, "C", ["owl", "star"], status="pending")
    add(db_session, "D", ["moon"], locale="en-GB")
    add(db_session, "E", ["moon"], locale="en-GB")
    assert store.known_keywords(db_session) == ["moon", "owl"]  # 3 and 2 approved stories
    # With a locale: only keywords having stories there, still ordered by the overall count.
    assert store.known_keywords(db_session, locale="en-US") == ["moon", "owl"]
    assert store.known_keywords(db_session, locale="en-GB") == ["moon"]
    assert store.known_keywords(db_session, locale="en-US", limit=1) == ["moon"]
    assert store.known_keywords(db_session, locale="fr-FR") == []


def test_story_counts_follow_reviews(db_session: Session) -> None:
    story = add(db_session, "A", ["owl", "moon"], status="pending")
    add(db_session, "B", ["owl"])

    def counts() -> dict[str, int]:
        db_session.expire_all()
        return dict(db_session.execute(select(Keyword.lemma, Keyword.story_count)).all())

    assert counts() == {"owl": 1, "moon": 0}
    store.review_story(db_session, story.id, "approved")
    assert counts() == {"owl": 2, "moon": 1}
    store.review_story(db_session, story.id, "approved")  # no change, no double count
    assert counts() == {"owl": 2, "moon": 1}
    store.review_story(db_session, story.id, "rejected", "no")
    assert counts() == {"owl": 1, "moon": 0}
    db_session.execute(update(Keyword).values(story_count=99))
    store.refresh_keyword_counts(db_session)
    assert counts() == {"owl": 1, "moon": 0}


# --------------------------------------------------------------------------- choosing


def test_choose_without_keywords(db_session: Session) -> None:
    story = add(db_session, "Any", ["owl"])
    add(db_session, "Elsewhere", ["owl"], locale="de-DE")
    choice = store.choose_story(db_session, [], None, "en-US")
    assert choice.match == "unheard"
    assert choice.story is not None and choice.story.id == story.id
    assert choice.story.keywords == ("owl",)


def test_choose_prefers_unheard_then_longest_ago(db_session: Session) -> None:
    a = add(db_session, "A", ["dragon", "princess"])
    b = add(db_session, "B", ["dragon", "princess"])
    add(db_session, "C", ["dragon"])
    listener = store.hash_listener_id("amzn1.ask.account.TEST")
    store.record_play(db_session, listener, a.id)
    choice = store.choose_story(db_session, ["dragon", "princess"], listener, "en-US")
    assert (choice.match, choice.story.id) == ("unheard", b.id)
    store.record_play(db_session, listener, b.id)
    # Make the plays' order unambiguous even with coarse clocks.
    plays = db_session.scalars(select(PlayHistory).order_by(PlayHistory.id)).all()
    plays[0].played_at = plays[1].played_at - timedelta(minutes=5)
    db_session.flush()
    choice = store.choose_story(db_session, ["dragons", "the princess"], listener, "en-US")
    assert (choice.match, choice.story.id) == ("heard", a.id)


def test_choose_partial_match(db_session: Session) -> None:
    dragon = add(db_session, "Dragon only", ["dragon"])
    choice = store.choose_story(db_session, ["dragon", "submarine"], None, "en-US")
    assert (choice.match, choice.story.id) == ("partial", dragon.id)
    owl = add(db_session, "Owl only", ["owl"])
    choice = store.choose_story(db_session, ["dragon", "owl"], None, "en-US")
    assert choice.match == "partial"
    assert choice.story.id in {dragon.id, owl.id}


def test_choose_partial_prefers_unheard(db_session: Session) -> None:
    dragon = add(db_session, "Dragon only", ["dragon"])
    owl = add(db_session, "Owl only", ["owl"])
    store.record_play(db_session, "listener-1", dragon.id)
    for seed in range(5):
        choice = store.choose_story(
            db_session, ["dragon", "owl"], "listener-1", "en-US", random.Random(seed)
        )
        assert (choice.match, choice.story.id) == ("partial", owl.id)


def test_choose_none_suggests_existing_keywords(db_session: Session) -> None:
    add(db_session, "A", ["owl", "moon"])
    add(db_session, "B", ["train"])
    add(db_session, "Hidden", ["secret"], status="pending")
    choice = store.choose_story(db_session, ["submarine"], "listener-1", "en-US")
    assert choice.story is None and choice.match == "none"
    assert choice.suggestions
    assert set(choice.suggestions) <= {"owl", "moon", "train"}


def test_choose_none_on_empty_catalogue(db_session: Session) -> None:
    choice = store.choose_story(db_session, [], None, "en-US")
    assert (choice.story, choice.match, choice.suggestions) == (None, "none", [])


def test_choose_respects_locale(db_session: Session) -> None:
    add(db_session, "British owl", ["owl"], locale="en-GB")
    assert store.choose_story(db_session, ["owl"], None, "en-US").match == "none"
    assert store.choose_story(db_session, ["owl"], None, "en-GB").match == "unheard"


def test_choose_is_random_among_equals(db_session: Session) -> None:
    ids = {add(db_session, f"Owl {i}", ["owl"]).id for i in range(12)}
    seen = {
        store.choose_story(db_session, ["owl"], None, "en-US", random.Random(seed)).story.id
        for seed in range(60)
    }
    assert seen <= ids
    assert len(seen) >= 6


def test_choose_excludes_everything_heard_until_exhausted(db_session: Session) -> None:
    ids = [add(db_session, f"Owl {i}", ["owl"]).id for i in range(5)]
    listener = "listener-x"
    served = []
    for _ in range(5):
        choice = store.choose_story(db_session, ["owl"], listener, "en-US")
        assert choice.match == "unheard"
        served.append(choice.story.id)
        store.record_play(db_session, listener, choice.story.id, finished=True)
    assert sorted(served) == sorted(ids)
    assert store.choose_story(db_session, ["owl"], listener, "en-US").match == "heard"


# --------------------------------------------------------------------------- listeners


def test_record_play_completes_the_same_play(db_session: Session) -> None:
    story = add(db_session, "A", ["owl"])
    store.record_play(db_session, "someone", story.id)
    store.record_play(db_session, "someone", story.id, finished=True)
    plays = db_session.scalars(select(PlayHistory)).all()
    assert [(p.story_id, p.finished) for p in plays] == [(story.id, True)]


def test_a_finished_play_of_another_story_is_a_row_of_its_own(db_session: Session) -> None:
    first, second = add(db_session, "A", ["owl"]), add(db_session, "B", ["owl"])
    store.record_play(db_session, "someone", first.id)
    store.record_play(db_session, "someone", second.id, finished=True)
    store.record_play(db_session, "someone", first.id, finished=True)
    plays = db_session.scalars(select(PlayHistory).order_by(PlayHistory.id)).all()
    assert [(p.story_id, p.finished) for p in plays] == [
        (first.id, False),
        (second.id, True),
        (first.id, True),
    ]


def test_play_history_keeps_the_most_recent_plays(db_session: Session) -> None:
    stories = [add(db_session, f"Owl {i}", ["owl"]) for i in range(12)]
    for story in stories:
        store.record_play(db_session, "busy", story.id, finished=True, history_limit=5)
    kept = db_session.scalars(select(PlayHistory.story_id).order_by(PlayHistory.id)).all()
    # Trimmed back to 5 whenever it passes 5 + 5 // 10: never more than the limit here.
    assert kept == [story.id for story in stories[-5:]]
    assert store.choose_story(db_session, ["owl"], "busy", "en-US").match == "unheard"


def test_the_play_history_limit_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from settings import ConfigurationError, Settings

    monkeypatch.setenv("BEDTIME_PLAY_HISTORY_LIMIT", "250")
    assert Settings.from_env().play_history_limit == 250
    monkeypatch.setenv("BEDTIME_PLAY_HISTORY_LIMIT", "0")
    with pytest.raises(ConfigurationError, match="at least 1"):
        Settings.from_env()


def test_raw_listener_ids_are_never_stored(db_session: Session) -> None:
    raw = "amzn1.ask.account.SECRET"
    story = add(db_session, "A", ["owl"])
    store.record_play(db_session, raw, story.id)
    store.save_listener_attributes(db_session, raw, {"name": "Zoë 🦄"})
    keys = db_session.scalars(select(Listener.key)).all()
    assert keys == [store.hash_listener_id(raw)]
    assert raw not in keys[0]


def test_listener_attributes_round_trip_and_delete(db_session: Session) -> None:
    key = store.hash_listener_id("user-1")
    assert store.load_listener_attributes(db_session, key) == {}
    store.save_listener_attributes(db_session, key, {"count": 1, "favourite": ["owl"]})
    store.save_listener_attributes(db_session, key, {"count": 2, "favourite": ["owl"]})
    db_session.expire_all()
    assert store.load_listener_attributes(db_session, key) == {"count": 2, "favourite": ["owl"]}
    story = add(db_session, "A", ["owl"])
    store.record_play(db_session, key, story.id)
    store.delete_listener(db_session, key)
    assert store.load_listener_attributes(db_session, key) == {}
    assert db_session.scalar(select(func.count()).select_from(PlayHistory)) == 0


# --------------------------------------------------------------------------- generation queue


def test_request_generation_upserts_demand(db_session: Session) -> None:
    first = store.request_generation(db_session, ["Unicorns", "the mice"], "en-US")
    second = store.request_generation(db_session, ["mouse", "unicorn"], "en-US")
    other_locale = store.request_generation(db_session, ["mouse", "unicorn"], "en-GB")
    assert first.id == second.id != other_locale.id
    assert second.keywords == ["mouse", "unicorn"]
    assert second.demand_count == 2
    assert second.status == RequestStatus.PENDING
    with pytest.raises(ValueError):
        store.request_generation(db_session, ["the", "!!"], "en-US")


def test_claim_and_complete(db_session: Session) -> None:
    low = store.request_generation(db_session, ["owl"], "en-US")
    high = store.request_generation(db_session, ["moon"], "en-US")
    store.request_generation(db_session, ["moon"], "en-US")
    claimed = store.claim_generation_requests(db_session, "worker-1", 1)
    assert [r.id for r in claimed] == [high.id]  # most demanded first
    assert (claimed[0].status, claimed[0].claimed_by, claimed[0].attempts) == (
        "claimed",
        "worker-1",
        1,
    )
    assert [r.id for r in store.claim_generation_requests(db_session, "worker-2", 5)] == [low.id]
    assert store.claim_generation_requests(db_session, "worker-3", 5) == []

    story = add(db_session, "Moon tale", ["moon"])
    done = store.complete_generation_request(db_session, high.id, story.id)
    assert (done.status, done.story_id) == ("done", story.id)
    failed = store.complete_generation_request(db_session, low.id, None, "model exploded")
    assert (failed.status, failed.last_error) == ("failed", "model exploded")
    # New demand reopens both.
    assert store.request_generation(db_session, ["owl"], "en-US").status == "pending"
    assert store.request_generation(db_session, ["moon"], "en-US").status == "pending"
    with pytest.raises(LookupError):
        store.complete_generation_request(db_session, 999999, None, "x")


def test_abandoned_claims_are_reclaimed(db_session: Session) -> None:
    request = store.request_generation(db_session, ["owl"], "en-US")
    store.claim_generation_requests(db_session, "dead-worker", 1)
    request = db_session.get(GenerationRequest, request.id)
    request.claimed_at = request.claimed_at - store.CLAIM_TIMEOUT - timedelta(minutes=1)
    db_session.commit()
    again = store.claim_generation_requests(db_session, "worker-2", 1)
    assert [(r.id, r.claimed_by, r.attempts) for r in again] == [(request.id, "worker-2", 2)]


def test_requests_stop_after_max_attempts(db_session: Session) -> None:
    request = store.request_generation(db_session, ["owl"], "en-US")
    for _ in range(store.MAX_ATTEMPTS):
        assert store.claim_generation_requests(db_session, "w", 1)
        store.complete_generation_request(db_session, request.id, None, "boom")
        store.request_generation(db_session, ["owl"], "en-US")
    assert store.claim_generation_requests(db_session, "w", 1) == []


# --------------------------------------------------------------------------- models registry


def test_model_registry_and_generated_story(db_session: Session) -> None:
    model = ModelRecord(
        name="tiny-gpt2-v1",
        model_class="GPT2LMHeadModel",
        hyperparameters={"lr": 3e-4, "layers": 2, "note": "ünïcode ✓"},
        artifact_path="/models/tiny",
        metrics={"val_loss": 2.5},
    )
    db_session.add(model)
    db_session.flush()
    story = store.add_story(
        db_session,
        StoryDraft(
            title="Generated",
            text="Once upon a time.",
            keywords=["owl"],
            source="generated",
            model_id=model.id,
            prompt="<|keywords|> owl",
            requested_keywords=["owl"],
            safety_verdict="safe",
            quality={"keyword_coverage": 1.0},
        ),
    )
    db_session.expire_all()
    stored = db_session.get(Story, story.id)
    assert stored.model.name == "tiny-gpt2-v1"
    assert stored.model.hyperparameters["note"] == "ünïcode ✓"
    assert (stored.review_status, stored.quality) == ("pending", {"keyword_coverage": 1.0})


def test_unknown_model_id_is_an_error_not_a_duplicate(db_session: Session) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        store.add_story(db_session, StoryDraft(title="T", text="x", model_id=424242))


def test_a_redirected_word_is_never_queued(db_session: Session) -> None:
    from db.store.queue import RedirectedRequest

    for words in (["gun"], ["dragon", "poopy"], ["kissing"]):
        with pytest.raises(RedirectedRequest, match="request policy"):
            store.request_generation(db_session, words, "en-US")
    assert store.pending_generation_count(db_session) == 0

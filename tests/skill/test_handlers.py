"""One or more dialogs per handler, through lambda_handler(event, None) on a seeded SQLite store."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pytest
from skill_testkit import (
    TRICKY_TITLE,
    USER_ID,
    Alexa,
    reprompt,
    spoken,
)
from sqlalchemy import func, select

from db import store
from db.models import GenerationRequest, Listener, PlayHistory
from skill.builder import build_skill


def demand(db_session: Any, *keywords: str) -> int:
    key = "|".join(sorted(keywords))
    row = db_session.scalar(
        select(GenerationRequest)
        .where(GenerationRequest.keywords_key == key)
        .execution_options(populate_existing=True)
    )
    return row.demand_count if row is not None else 0


def plays(db_session: Any) -> list[PlayHistory]:
    return list(db_session.scalars(select(PlayHistory).execution_options(populate_existing=True)))


# --------------------------------------------------------------------------- launch / session
def test_launch_welcomes_a_new_listener(alexa: Alexa) -> None:
    out = alexa.launch()
    assert spoken(out).startswith("Welcome to Bedtime Stories.")
    assert "What would you like a story about?" in reprompt(out)
    assert out["response"]["shouldEndSession"] is False


def test_session_ended_says_nothing(alexa: Alexa) -> None:
    alexa.launch()
    out = alexa.session_ended()
    assert "outputSpeech" not in out["response"]


def test_session_ended_with_error_is_logged(alexa: Alexa, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        alexa.session_ended(
            reason="ERROR", error={"type": "INVALID_RESPONSE", "message": "SSML is broken"}
        )
    assert "SSML is broken" in caplog.text


# --------------------------------------------------------------------------- telling stories
def test_tell_story_about_a_keyword(alexa: Alexa, db_session: Any) -> None:
    out = alexa.intent("TellStoryIntent", keyword="dragons")
    said = spoken(out)
    assert said.startswith("Here is a story called")
    assert "dragon" in said.lower()
    assert said.endswith("The end. Would you like another story?")
    card = out["response"]["card"]
    assert card["type"] == "Simple" and card["title"] in said
    history = plays(db_session)
    assert len(history) == 1 and history[0].finished
    # Only the hashed id is stored.
    assert history[0].listener_key == store.hash_listener_id(USER_ID)
    assert (
        db_session.scalar(select(func.count()).select_from(Listener).where(Listener.key == USER_ID))
        == 0
    )


def test_entity_resolution_canonical_value_is_used(alexa: Alexa) -> None:
    out = alexa.intent("TellStoryIntent", keyword=("kitty", "cat"))
    assert TRICKY_TITLE in spoken(out)


def test_no_entity_match_falls_back_to_the_spoken_words(alexa: Alexa) -> None:
    out = alexa.intent("TellStoryIntent", keyword=("whales", None))
    assert "whale" in spoken(out).lower()
    assert spoken(out).startswith("Here is a story called")


def test_two_keywords_with_a_story_having_both(alexa: Alexa) -> None:
    out = alexa.intent("TellStoryIntent", keyword="dragon", secondKeyword="castles")
    assert "A Second Dragon" in spoken(out)


def test_two_keywords_partial_match_is_honest_and_queued(alexa: Alexa, db_session: Any) -> None:
    out = alexa.intent("TellStoryIntent", keyword="whales", secondKeyword="trains")
    assert "I don't have a story about whales and trains together yet" in spoken(out)
    assert demand(db_session, "whale", "train") == 1


def test_unknown_keyword_suggests_existing_ones_and_counts_demand(
    alexa: Alexa, db_session: Any
) -> None:
    out = alexa.intent("TellStoryIntent", keyword="unicorns")
    said = spoken(out)
    assert said.startswith("I don't have a story about unicorns yet")
    assert "I do have stories about" in said
    assert out["response"]["shouldEndSession"] is False
    assert "Which would you like?" in reprompt(out)
    alexa.intent("TellStoryIntent", keyword="unicorn")
    assert demand(db_session, "unicorn") == 2


def test_surprise_me(alexa: Alexa) -> None:
    out = alexa.intent("TellStoryIntent")
    assert spoken(out).startswith("Here is a surprise story.")


def test_unapproved_stories_are_never_told(alexa: Alexa) -> None:
    out = alexa.intent("TellStoryIntent", keyword="robots")
    assert "Not yet approved" not in spoken(out)
    assert spoken(out).startswith("I don't have a story about robots yet")


def test_never_repeats_a_story_while_unheard_ones_exist(alexa: Alexa) -> None:
    first = spoken(alexa.intent("TellStoryIntent", keyword="moon"))
    second = spoken(alexa.intent("TellStoryIntent", keyword="moon"))
    assert first.split(".")[0] != second.split(".")[0]  # different titles
    third = spoken(alexa.intent("TellStoryIntent", keyword="moon"))
    assert "one you have heard before" in third


def test_yes_after_a_story_tells_another_about_the_same_thing(alexa: Alexa) -> None:
    first = spoken(alexa.intent("TellStoryIntent", keyword="moon"))
    second = spoken(alexa.intent("AMAZON.YesIntent"))
    assert second.startswith("Here is a story called")
    assert first[:60] != second[:60]


def test_no_after_a_story_says_goodnight(alexa: Alexa) -> None:
    """The goodnight ritual; no sleep sound is offered where none is set up."""
    alexa.intent("TellStoryIntent", keyword="owl")
    out = alexa.intent("AMAZON.NoIntent")
    assert spoken(out) == (
        "And now, it's time for sleep. Close your eyes, and take a slow, deep breath in, "
        "and out. Goodnight, sleep tight."
    )
    assert out["response"]["shouldEndSession"] is True


def test_yes_to_what_story_means_surprise(alexa: Alexa) -> None:
    alexa.launch()
    assert spoken(alexa.intent("AMAZON.YesIntent")).startswith("Here is a surprise story.")


def test_list_topics(alexa: Alexa) -> None:
    out = alexa.intent("ListTopicsIntent")
    assert spoken(out).startswith("I have stories about")
    assert spoken(out).endswith("Which would you like?")


# --------------------------------------------------------------------------- long stories
def test_long_story_parts_next_repeat_start_over(alexa: Alexa) -> None:
    first = alexa.intent("TellStoryIntent", keyword="giant")
    assert spoken(first).endswith("Shall I go on?")
    assert reprompt(first) == "Shall I go on with the story?"
    assert "card" in first["response"]
    second = alexa.intent("AMAZON.NextIntent")
    assert "card" not in second["response"]  # the card came with the first part
    assert spoken(second) != spoken(first)
    again = alexa.intent("AMAZON.RepeatIntent")
    assert spoken(again) == spoken(second)
    restart = alexa.intent("AMAZON.StartOverIntent")
    assert spoken(restart).startswith("Let's start The Giant's Very Long Night again")
    parts = 1
    out = restart
    while spoken(out).endswith("Shall I go on?"):
        out = alexa.intent("AMAZON.YesIntent")
        parts += 1
        assert parts < 40
    assert parts > 3
    assert spoken(out).endswith("The end. Would you like another story?")


def test_no_between_parts_keeps_the_place(alexa: Alexa) -> None:
    alexa.intent("TellStoryIntent", keyword="giant")
    alexa.intent("AMAZON.YesIntent")
    out = alexa.intent("AMAZON.NoIntent")
    assert "I'll remember where we were in The Giant's Very Long Night" in spoken(out)
    welcome = alexa.launch()
    assert spoken(welcome) == (
        "Welcome back. Last time we were in the middle of "
        "The Giant's Very Long Night. Shall I carry on, or start from the beginning?"
    )


def test_pause_then_resume_next_session_with_yes(alexa: Alexa) -> None:
    alexa.intent("TellStoryIntent", keyword="giant")
    second = alexa.intent("AMAZON.NextIntent")
    paused = alexa.intent("AMAZON.PauseIntent")
    assert spoken(paused).startswith("Okay, I've paused The Giant's Very Long Night.")
    assert paused["response"]["shouldEndSession"] is True
    welcome = alexa.launch()
    assert "Last time we were in the middle of The Giant's Very Long Night" in spoken(welcome)
    resumed = alexa.intent("AMAZON.YesIntent")
    assert spoken(resumed).startswith("Let's carry on with The Giant's Very Long Night.")
    # The next part nobody heard yet: not the part told before the pause.
    assert _part_text(second) not in spoken(resumed)
    third = alexa.intent("AMAZON.RepeatIntent")  # repeat = the part just told
    assert _part_text(third) in spoken(resumed)


def test_from_the_beginning_instead_of_carrying_on(alexa: Alexa) -> None:
    first = alexa.intent("TellStoryIntent", keyword="giant")
    alexa.intent("AMAZON.NextIntent")
    alexa.intent("AMAZON.StopIntent")
    alexa.launch()
    again = alexa.intent("AMAZON.StartOverIntent")
    assert spoken(again).startswith("Let's start The Giant's Very Long Night again")
    assert _part_text(first).split(". ", 1)[1][:200] in spoken(again)


def _part_text(out: dict[str, Any]) -> str:
    """The story words of a reply: without the intro sentence and the question after them."""
    text = spoken(out).removesuffix(" Shall I go on?")
    return text.split("Night. ", 1)[1] if text.startswith("Let's") else text


def test_resume_intent_in_session(alexa: Alexa) -> None:
    alexa.intent("TellStoryIntent", keyword="giant")
    out = alexa.intent("AMAZON.ResumeIntent")
    assert spoken(out).startswith("Let's carry on with")


def test_declining_to_resume_offers_a_new_story_and_forgets(alexa: Alexa) -> None:
    alexa.intent("TellStoryIntent", keyword="giant")
    alexa.intent("AMAZON.StopIntent")
    alexa.launch()
    out = alexa.intent("AMAZON.NoIntent")
    assert spoken(out) == "Okay, let's have a new story. What would you like a story about?"
    assert out["response"]["shouldEndSession"] is False
    alexa.intent("AMAZON.StopIntent")
    assert spoken(alexa.launch()).startswith("Welcome to Bedtime Stories.")


def test_bookmarks_are_per_listener(make_alexa: Any) -> None:
    parent = make_alexa(user_id="amzn1.ask.account.PARENT")
    child = make_alexa(user_id="amzn1.ask.account.CHILD")
    parent.intent("TellStoryIntent", keyword="giant")
    parent.intent("AMAZON.StopIntent")
    assert spoken(child.launch()).startswith("Welcome to Bedtime Stories.")
    assert "Last time" in spoken(parent.launch())


@pytest.mark.parametrize(
    "intent", ["AMAZON.RepeatIntent", "AMAZON.StartOverIntent", "AMAZON.ResumeIntent"]
)
def test_navigation_without_a_story_asks_for_a_topic(alexa: Alexa, intent: str) -> None:
    out = alexa.intent(intent)
    assert spoken(out).endswith("What would you like a story about?")
    assert out["response"]["shouldEndSession"] is False


def test_pause_without_a_story(alexa: Alexa) -> None:
    out = alexa.intent("AMAZON.PauseIntent")
    assert spoken(out) == "Okay. Goodnight."


def test_repeat_after_the_end_repeats_the_last_part(alexa: Alexa) -> None:
    told = alexa.intent("TellStoryIntent", keyword="kite")
    again = alexa.intent("AMAZON.RepeatIntent")
    assert spoken(again) in spoken(told)


def test_start_over_after_the_end(alexa: Alexa) -> None:
    alexa.intent("TellStoryIntent", keyword="kite")
    out = alexa.intent("AMAZON.StartOverIntent")
    assert spoken(out).startswith("Let's start")


def test_next_without_a_story_tells_one(alexa: Alexa) -> None:
    assert spoken(alexa.intent("AMAZON.NextIntent")).startswith("Here is a surprise story.")


# --------------------------------------------------------------------------- built-ins
def test_help(alexa: Alexa) -> None:
    out = alexa.intent("AMAZON.HelpIntent")
    assert spoken(out).startswith("I tell bedtime stories.")
    assert out["response"]["shouldEndSession"] is False


@pytest.mark.parametrize(
    "intent", ["AMAZON.StopIntent", "AMAZON.CancelIntent", "AMAZON.NavigateHomeIntent"]
)
def test_stop_cancel_and_home_say_goodnight(alexa: Alexa, intent: str) -> None:
    out = alexa.intent(intent)
    assert spoken(out) == "Goodnight, sleep tight."
    assert out["response"]["shouldEndSession"] is True


def test_fallback(alexa: Alexa) -> None:
    out = alexa.intent("AMAZON.FallbackIntent")
    assert spoken(out).startswith("Hmm, I didn't quite catch that.")
    assert out["response"]["shouldEndSession"] is False


def test_an_intent_this_version_does_not_know_gets_the_fallback(alexa: Alexa) -> None:
    assert spoken(alexa.intent("SomeFutureIntent")).startswith("Hmm, I didn't quite catch")


# --------------------------------------------------------------------------- request policy
REDIRECT = "Hmm, that one isn't for bedtime stories."
PROMISES = ("storyteller", "write", "ready soon", "brand new", "another night", "let me think")


def queued(db_session: Any) -> list[list[str]]:
    rows = db_session.scalars(select(GenerationRequest).execution_options(populate_existing=True))
    return [list(row.keywords) for row in rows]


@pytest.mark.parametrize(
    ("intent", "slots"),
    [
        ("TellStoryIntent", {"keyword": "gun"}),
        ("TellStoryIntent", {"keyword": "poopy"}),
        ("TellStoryIntent", {"keyword": "guns"}),  # inflected
        ("TellStoryIntent", {"keyword": "a story about a handgun"}),
        ("TellStoryIntent", {"keyword": "dragon", "secondKeyword": "vape"}),
        ("TellStoryIntent", {"keyword": ("pistol", "gun")}),  # the canonical name counts too
        ("NewStoryIntent", {"keyword": "farting"}),
        ("NewStoryIntent", {"keyword": "idiot"}),
        ("NewStoryIntent", {"keyword": "kissing"}),
    ],
)
def test_redirected_words_get_a_kind_answer_and_nothing_else(
    alexa: Alexa, db_session: Any, intent: str, slots: dict[str, Any]
) -> None:
    out = alexa.intent(intent, **slots)
    said = spoken(out)
    assert said.startswith(REDIRECT) and "How about a story about" in said
    assert not any(promise in said.lower() for promise in PROMISES), said
    for value in slots.values():
        word = value[0] if isinstance(value, tuple) else value
        if word != "dragon":
            assert word.split()[-1] not in said.lower()  # the word is never said back
    assert out["response"]["shouldEndSession"] is False
    assert "Which would you like?" in reprompt(out)
    assert queued(db_session) == []
    assert plays(db_session) == []


def test_a_redirect_never_suggests_a_redirected_topic(alexa: Alexa, db_session: Any) -> None:
    from safety import judge_request

    said = spoken(alexa.intent("TellStoryIntent", keyword="gun"))
    topics = said.split("How about a story about ", 1)[1].rstrip("?")
    for topic in topics.replace(" and ", ", ").split(", "):
        assert judge_request(topic).allowed, topic


@pytest.mark.parametrize("word", ["dragon", "ghost", "monster", "witch", "pirate", "shark"])
def test_gentle_scary_words_are_allowed(alexa: Alexa, word: str) -> None:
    assert not spoken(alexa.intent("TellStoryIntent", keyword=word)).startswith(REDIRECT)


def test_the_live_storyteller_never_hears_a_redirected_word(services: Any, api_client: Any) -> None:
    teller = FakeTeller()
    alexa = _live_alexa(services, api_client, teller)
    out = alexa.intent("NewStoryIntent", keyword="bullets")
    assert spoken(out).startswith(REDIRECT)
    assert teller.calls == []


# --------------------------------------------------------------------------- new stories
def test_new_story_without_live_model_is_queued_honestly(alexa: Alexa, db_session: Any) -> None:
    out = alexa.intent("NewStoryIntent", keyword="dragons")
    said = spoken(out)
    assert "I'll write a brand new story about dragons, and it will be ready soon" in said
    assert said.endswith("Would you like a story I already have about dragons tonight?")
    assert demand(db_session, "dragon") == 1
    told = alexa.intent("AMAZON.YesIntent")
    assert "dragon" in spoken(told).lower()


def test_new_story_about_something_unknown_offers_another(alexa: Alexa) -> None:
    out = alexa.intent("NewStoryIntent", keyword="volcanoes")
    assert spoken(out).endswith("Would you like a different story tonight?")


def test_new_story_without_a_keyword_elicits_it(alexa: Alexa) -> None:
    out = alexa.intent("NewStoryIntent")
    assert spoken(out) == "What should the new story be about?"
    directive = out["response"]["directives"][0]
    assert directive["type"] == "Dialog.ElicitSlot"
    assert directive["slotToElicit"] == "keyword"


@dataclass
class FakeGenerated:
    title: str
    text: str


class FakeTeller:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[list[str], float]] = []

    def tell(self, keywords: list[str], timeout_s: float) -> FakeGenerated:
        self.calls.append((list(keywords), timeout_s))
        time.sleep(self.delay)
        return FakeGenerated("The Volcano Who Yawned", "A sleepy volcano yawned.\n\nGoodnight.")


def _live_alexa(services: Any, api_client: Any, teller: FakeTeller) -> Alexa:
    services.storyteller = teller
    return Alexa(build_skill(services=services, api_client=api_client).lambda_handler())


def test_new_story_live_sends_a_progressive_response_first(services: Any, api_client: Any) -> None:
    teller = FakeTeller()
    alexa = _live_alexa(services, api_client, teller)
    out = alexa.intent("NewStoryIntent", keyword="volcanoes")
    assert spoken(out).startswith("Here is a brand new story. It's called The Volcano Who Yawned.")
    assert teller.calls == [(["volcano"], services.settings.live_deadline_seconds)]
    (request,) = api_client.requests
    assert request.url.endswith("/v1/directives")
    assert "Let me think of a story about volcanoes" in str(request.body)


def test_new_story_live_too_slow_falls_back_to_a_stored_story(
    services: Any, api_client: Any, db_session: Any
) -> None:
    import dataclasses

    services.settings = dataclasses.replace(services.settings, live_deadline_seconds=0.05)
    alexa = _live_alexa(services, api_client, FakeTeller(delay=1.0))
    out = alexa.intent("NewStoryIntent", keyword="whales")
    said = spoken(out)
    assert said.startswith("That new story is taking me a while")
    assert "Here is a story called" in said and "whale" in said.lower()
    assert demand(db_session, "whale") == 1


def test_live_generation_is_off_when_human_review_is_required(
    services: Any, api_client: Any
) -> None:
    import dataclasses

    services.settings = dataclasses.replace(services.settings, require_human_review=True)
    teller = FakeTeller()
    alexa = _live_alexa(services, api_client, teller)
    out = alexa.intent("NewStoryIntent", keyword="volcanoes")
    assert "ready soon" in spoken(out)
    assert teller.calls == []


def test_progressive_response_failure_does_not_spoil_the_turn(
    services: Any, api_client: Any
) -> None:
    api_client.status = 500
    alexa = _live_alexa(services, api_client, FakeTeller())
    assert spoken(alexa.intent("NewStoryIntent", keyword="volcanoes")).startswith(
        "Here is a brand new story."
    )


# --------------------------------------------------------------------------- screens, locales
def test_apl_document_only_when_the_device_has_a_screen(make_alexa: Any) -> None:
    speaker = make_alexa(apl=False).intent("TellStoryIntent", keyword="owl")
    assert "directives" not in speaker["response"]
    screen = make_alexa(apl=True, user_id="amzn1.ask.account.SCREEN").intent(
        "TellStoryIntent", keyword="owl"
    )
    (directive,) = screen["response"]["directives"]
    assert directive["type"] == "Alexa.Presentation.APL.RenderDocument"
    assert directive["datasources"]["story"]["title"] in spoken(screen)


@pytest.mark.parametrize("locale", ["en-GB", "en-AU", "en-CA", "en-IN"])
def test_other_english_locales_hear_the_catalogue(make_alexa: Any, locale: str) -> None:
    out = make_alexa(locale=locale).intent("TellStoryIntent", keyword="dragon")
    assert spoken(out).startswith("Here is a story called")


def test_locale_overrides_are_used(make_alexa: Any) -> None:
    out = make_alexa(locale="en-GB").intent("NewStoryIntent", keyword="dragons")
    assert spoken(out).startswith("What a lovely idea.")


# --------------------------------------------------------------------------- failures
def test_database_failure_is_a_kind_apology_with_a_logged_traceback(
    alexa: Alexa, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy.exc import OperationalError

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "choose_story", broken)
    with caplog.at_level(logging.ERROR):
        out = alexa.intent("TellStoryIntent", keyword="dragon")
    assert spoken(out) == (
        "Oh dear, something went wrong with my story book. Please try again in a moment."
    )
    assert out["response"]["shouldEndSession"] is False
    record = next(r for r in caplog.records if "Unhandled" in r.getMessage())
    assert record.exc_info is not None
    assert "TellStoryIntent" in record.getMessage()


def test_a_failed_turn_does_not_lose_the_bookmark(
    alexa: Alexa, monkeypatch: pytest.MonkeyPatch
) -> None:
    alexa.intent("TellStoryIntent", keyword="giant")
    alexa.intent("AMAZON.StopIntent")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(store, "get_story", broken)
    alexa.launch()
    alexa.intent("AMAZON.YesIntent")  # fails: apology
    monkeypatch.undo()
    alexa.intent("AMAZON.StopIntent")
    assert "Last time we were in the middle of" in spoken(alexa.launch())


def test_requests_for_another_skill_are_refused(alexa: Alexa) -> None:
    from ask_sdk_core.exceptions import AskSdkException

    alexa.skill_id = "amzn1.ask.skill.someone-else"
    with pytest.raises(AskSdkException, match="Skill ID Verification failed"):
        alexa.launch()


class _FakeModel:
    """Stands in for generator.decoding.StoryGenerator inside the real LiveStoryteller."""

    def generate(self, keyword_lists: list[list[str]], **kwargs: Any) -> list[Any]:
        from generator.assemble import APPROVED, GeneratedStory

        return [
            GeneratedStory(
                title="The Comet Who Could Not Sleep",
                text="A little comet yawned.\n\nThen it slept. Goodnight.",
                keywords=tuple(words),
                status=APPROVED,
                safety={"verdict": "ok"},
            )
            for words in keyword_lists
        ]


def test_live_story_is_told_once_and_waits_as_pending(
    services: Any, api_client: Any, db_session: Any
) -> None:
    """Without auto-approval a live story is told to the child who asked, then waits for a
    person: it is stored pending, with its safety verdict on the review trail."""
    from db.models import SafetyReview, Story
    from generator.live import LiveStoryteller

    teller = LiveStoryteller("unused", deadline_s=5.0, generator_factory=_FakeModel)
    try:
        assert teller.wait_ready(10)
        services.storyteller = teller
        alexa = Alexa(build_skill(services=services, api_client=api_client).lambda_handler())
        out = alexa.intent("NewStoryIntent", keyword="comets")
        assert "It's called The Comet Who Could Not Sleep." in spoken(out)
        stored = db_session.scalar(
            select(Story).where(Story.title == "The Comet Who Could Not Sleep")
        )
        assert stored is not None and stored.review_status == "pending"
        trail = db_session.scalars(select(SafetyReview).where(SafetyReview.story_id == stored.id))
        assert [review.reasons for review in trail] == [{"verdict": "ok"}]
        again = alexa.intent("TellStoryIntent", keyword="comet")
        assert "The Comet Who Could Not Sleep" not in spoken(again)
    finally:
        teller.close()


def test_real_live_storyteller_story_is_stored_and_told(
    services: Any, api_client: Any, db_session: Any
) -> None:
    import dataclasses

    from db.models import Story
    from generator.live import LiveStoryteller

    teller = LiveStoryteller("unused", deadline_s=5.0, generator_factory=_FakeModel)
    try:
        assert teller.wait_ready(10)
        services.storyteller = teller
        services.settings = dataclasses.replace(services.settings, auto_approve_live=True)
        alexa = Alexa(build_skill(services=services, api_client=api_client).lambda_handler())
        out = alexa.intent("NewStoryIntent", keyword="comets")
        assert spoken(out).startswith(
            "Here is a brand new story. It's called The Comet Who Could Not Sleep."
        )
        stored = db_session.scalar(
            select(Story).where(Story.title == "The Comet Who Could Not Sleep")
        )
        assert stored is not None and stored.source == "generated"
        assert [p.story_id for p in plays(db_session)] == [stored.id]
        # Auto-approved, so the catalogue can tell it again another night.
        again = alexa.intent("TellStoryIntent", keyword="comet")
        assert "The Comet Who Could Not Sleep" in spoken(again)
    finally:
        teller.close()


def test_repeating_a_finished_story_does_not_count_as_another_play(
    alexa: Alexa, db_session: Any
) -> None:
    alexa.intent("TellStoryIntent", keyword="kite")
    alexa.intent("AMAZON.RepeatIntent")
    history = plays(db_session)
    assert len(history) == 1 and history[0].finished

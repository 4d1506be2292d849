"""The story gate: words anywhere (inflected), the meaning check, calm endings, the verdict."""

from __future__ import annotations

import time

import pytest

from safety import gate, meaning
from safety.gate import check_stories, check_story, check_text
from safety.meaning import CLASSES, Head, split_sentences


@pytest.mark.parametrize(
    "text",
    [
        "The little bear KILLED a fly and went to sleep.",  # mid-sentence, past tense, caps
        "They were dying of thirst.",  # -ing form
        "The dragon's blood-red scales shone.",  # hyphenated compound
        "The pirates beat up the sailor.",  # phrase with an inflected first word
        "Grandpa drank whiskey by the fire.",
        "The man had two handguns.",
        "What the hell was that?",  # better-profanity list
        "The bunny was farting all day.",  # inflection of a listed word
        "Tom said his brother was an idiot.",
        "The children looked up and said, oh my God, I love the stars!",  # exclamations
    ],
)
def test_unsuitable_words_anywhere_are_caught(text: str) -> None:
    verdict = check_text(text, meaning=False)
    assert not verdict.ok
    assert verdict.reason and verdict.reason.startswith("unsafe:")
    assert verdict.line().startswith("flagged: ")


@pytest.mark.parametrize(
    "text",
    [
        "The bunny hopped to the garden and fell asleep under a bright star.",
        "A shooting star flew over the sea.",
        "They rolled the dice and laughed.",
        "Dad gave her a tickle attack.",  # "attack" is left to the meaning check
        "The batteries were dead, so they read by moonlight.",
        "Casper the friendly ghost said hello.",
        "The friendly monster baked a cake.",
        "The knight put down his sword.",
        "The cook cut the bread with a knife.",
        "Charlie stopped dead in his tracks.",
        "They killed time by singing songs.",
        "The old god of the sea smiled at the little boat.",
    ],
)
def test_bedtime_text_passes_the_words(text: str) -> None:
    verdict = check_text(text, meaning=False)
    assert verdict.ok, verdict.reason


def test_title_is_checked_too() -> None:
    assert not check_story("The Bloody Castle", "The bunny slept.", meaning=False).ok
    assert check_story("The Sleepy Castle", "The bunny slept.", meaning=False).ok


def test_categories_are_reported() -> None:
    verdict = check_text("The witch had a gun and some beer.", meaning=False)
    assert {"weapons", "drugs and alcohol"} <= set(verdict.categories)


@pytest.mark.parametrize(
    "ending",
    [
        "Lily cried and cried.",
        "The little fox was all alone.",
        "And the bunny never came back.",
        "Tim was scared of the dark forever.",
    ],
)
def test_a_sad_frightening_or_unresolved_ending_fails(ending: str) -> None:
    text = f"Lily and Tim played in the garden.\n\nThey had a picnic. {ending}"
    verdict = check_story("The Garden", text, meaning=False)
    assert not verdict.ok and verdict.ending, verdict
    assert "ending:" in str(verdict.reason)


@pytest.mark.parametrize(
    "ending",
    [
        "Lily was scared, but Mom hugged her.\n\nShe smiled and fell asleep.",
        "She was not sad anymore. They hugged and went to sleep.",
        "The little fox was never lonely again.",
        "Tim wasn't scared any more, and he slept all night.",
    ],
)
def test_a_calm_ending_passes(ending: str) -> None:
    verdict = check_story("The Garden", f"Lily and Tim played.\n\n{ending}", meaning=False)
    assert verdict.ok, verdict.reason


def test_sentences_are_split_with_their_quotes() -> None:
    assert split_sentences('She said, "Hello!" Then she slept.\n\nThe end') == [
        'She said, "Hello!"',
        "Then she slept.",
        "The end",
    ]


class _FakeHead:
    """A head over a two-number fake embedding: [suitable, violent]."""

    @staticmethod
    def install(monkeypatch: pytest.MonkeyPatch, violent_words: set[str]) -> Head:
        import numpy as np

        def fake_embed(sentences: list[str]) -> np.ndarray:
            rows = []
            for sentence in sentences:
                words = {w.strip(".,!?\"'").lower() for w in sentence.split()}
                rows.append([0.0, 1.0] if words & violent_words else [1.0, 0.0])
            return np.asarray(rows, dtype=np.float32).reshape(len(sentences), 2)

        weights = np.zeros((len(CLASSES), 2), dtype=np.float32)
        weights[CLASSES.index("suitable"), 0] = 8.0
        weights[CLASSES.index("violence"), 1] = 8.0
        bias = np.zeros(len(CLASSES), np.float32)
        head = Head(((weights, bias),), CLASSES, 0.5, 0.2, "head-fake", {})
        monkeypatch.setattr(meaning, "embed", fake_embed)
        monkeypatch.setattr(meaning, "load_head", lambda path=None: head)
        return head


def test_the_meaning_check_flags_sentences_by_category(monkeypatch: pytest.MonkeyPatch) -> None:
    _FakeHead.install(monkeypatch, {"ate"})
    verdict = check_story("Grandma", "The wolf ate grandma. Then everyone slept.", meaning=True)
    assert not verdict.ok
    assert [s.category for s in verdict.sentences] == ["violence"]
    assert verdict.sentences[0].sentence == "The wolf ate grandma."
    assert "violence ('The wolf ate grandma.'" in str(verdict.reason)
    assert verdict.checker.endswith("+head-fake")
    assert verdict.as_dict()["sentences"][0]["category"] == "violence"
    assert check_story("Grandma", "The wolf hugged grandma.", meaning=True).ok


def test_stories_are_judged_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    _FakeHead.install(monkeypatch, {"ate"})
    batches: list[int] = []
    original = meaning.judge_sentences

    def counting(sentences, head=None):
        batches.append(len(sentences))
        return original(sentences, head)

    monkeypatch.setattr(meaning, "judge_sentences", counting)
    verdicts = check_stories([("A", "One. Two."), ("B", "The fox ate it. Three.")], meaning=True)
    assert [v.ok for v in verdicts] == [True, False]
    assert len(batches) == 1


def test_without_the_model_the_verdict_says_words_only() -> None:
    verdict = check_story("The Moon", "The moon slept.", meaning=False)
    assert verdict.checker.endswith("+words-only")
    assert verdict.checker.startswith("words-")


def test_the_word_layer_is_fast_enough_for_the_live_path() -> None:
    gate.story_lists()
    text = "The little owl flew over the quiet forest and sang to the moon. " * 30
    started = time.perf_counter()
    for _ in range(20):
        check_text(text, meaning=False)
    assert (time.perf_counter() - started) / 20 < 0.05


def test_the_end_is_not_the_ending() -> None:
    text = "The fox played.\n\nThe little fox was all alone. The end."
    assert not check_story("Fox", text, meaning=False).ok


def test_titles_and_short_sentences_are_read_with_a_neighbour() -> None:
    from safety.gate import short_contexts

    body = ["It was the snail.", "The snail was slow and happy in the garden.", "Goodnight."]
    contexts = short_contexts(["The Fox"], body)
    assert contexts["The Fox"] == "The Fox. It was the snail."
    assert (
        contexts["It was the snail."]
        == "It was the snail. The snail was slow and happy in the garden."
    )
    assert contexts["Goodnight."] == "The snail was slow and happy in the garden. Goodnight."
    assert body[1] not in contexts  # long enough to judge alone


def test_a_short_sentence_fails_only_if_it_also_fails_in_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from safety import meaning

    scores = {"It was the snail.": 0.99, "It was the snail. The snail ate a leaf slowly.": 0.1}
    head = Head((), CLASSES, 0.5, 0.2, "head-fake", {})
    monkeypatch.setattr(meaning, "load_head", lambda path=None: head)
    monkeypatch.setattr(
        meaning,
        "judge_sentences",
        lambda sentences, head=None: [
            meaning.SentenceJudgement(s, scores.get(s, 0.0), "fear and menace") for s in sentences
        ],
    )
    verdict = check_story("Snail", "It was the snail. The snail ate a leaf slowly.", meaning=True)
    assert verdict.ok, verdict.as_dict()
    scores["It was the snail. The snail ate a leaf slowly."] = 0.95
    verdict = check_story("Snail", "It was the snail. The snail ate a leaf slowly.", meaning=True)
    assert not verdict.ok and verdict.sentences[0].sentence == "It was the snail."


def test_a_head_that_reads_context_keeps_only_sentences_bad_in_their_story(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Round 9c's gate (head meta ``context_window``): a flagged sentence fails the story only if
    its window (previous, itself, next) also reads unsuitable; a head without it is unchanged."""
    from safety import meaning
    from safety.gate import CONTEXT_WINDOW

    noise = "They heard a big noise coming from inside."
    story = f"The wind howled outside. {noise} Emma giggled excitedly."
    scores = {noise: 0.97, story: 0.2}
    plain = Head((), CLASSES, 0.9, 0.3, "head-fake", {})
    reading = Head((), CLASSES, 0.9, 0.3, "head-fake", {CONTEXT_WINDOW: True})
    monkeypatch.setattr(
        meaning,
        "judge_sentences",
        lambda sentences, head=None: [
            meaning.SentenceJudgement(s, scores.get(s, 0.0), "fear and menace") for s in sentences
        ],
    )
    monkeypatch.setattr(meaning, "load_head", lambda path=None: plain)
    assert not check_story("Wind", story, meaning=True).ok
    monkeypatch.setattr(meaning, "load_head", lambda path=None: reading)
    assert check_story("Wind", story, meaning=True).ok
    scores[story] = 0.95  # the story around it is menacing too: the sentence still fails it
    verdict = check_story("Wind", story, meaning=True)
    assert not verdict.ok and verdict.sentences[0].sentence == noise


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # Found by a blind read of the storyteller's catalogue (round 3): a death euphemism and
        # a grown-up romance that no word list caught.
        ("Her grandmother had passed away just that morning.", "injury and death (passed away)"),
        ("John could not stop talking about his girlfriend.", "adult (girlfriend)"),
    ],
)
def test_euphemisms_and_romance_are_listed(text: str, reason: str) -> None:
    verdict = check_text(text, meaning=False)
    assert not verdict.ok and reason in str(verdict.reason)


@pytest.mark.parametrize(
    "text", ["The cars were passing by.", "With each passing moment he grew braver."]
)
def test_passing_by_is_not_a_death(text: str) -> None:
    assert check_text(text, meaning=False).ok

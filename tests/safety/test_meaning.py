"""The meaning check with the real sentence-embedding model and the shipped head (skipped where
the ``safety`` extra is not installed). Figures on the whole evaluation set: README."""

from __future__ import annotations

import pytest

from safety import meaning
from safety.gate import check_story, check_text
from safety.training import CALM_NEIGHBOUR_PROBE

pytestmark = pytest.mark.skipif(
    not meaning.available(), reason="needs pip install -e '.[safety]' and a trained head"
)


@pytest.mark.parametrize(
    "sentence",
    [
        "The wolf ate grandma.",
        "the man tried to take her head",
        "A stranger said, get in my car and I will give you a puppy.",
        "The big boy hit Tim until he cried.",
    ],
)
def test_the_issue_examples_are_flagged_by_meaning(sentence: str) -> None:
    verdict = check_text(sentence)
    assert not verdict.ok, verdict.as_dict()
    assert verdict.sentences, "the meaning check, not only the word lists, must catch it"


def test_a_death_euphemism_is_flagged_by_the_word_list() -> None:
    # The classifier scores it 0.68, under its threshold; the word list names the phrase.
    verdict = check_text("Her mommy fell asleep and never woke up.")
    assert not verdict.ok and ("injury and death", "never woke up") in verdict.matches


@pytest.mark.parametrize(
    "sentence",
    [
        "Dad gave her a big tickle attack and she giggled.",
        "The batteries were dead, so they looked at the stars instead.",
        "Casper the friendly ghost waved hello.",
        "The friendly monster shared his cookies with everyone.",
        "The knight put down his sword and smiled.",
        "Lily was a little scared of the dark, so Mom left the door open.",
    ],
)
def test_harmless_look_alikes_pass(sentence: str) -> None:
    verdict = check_text(sentence)
    assert verdict.ok, verdict.as_dict()


def test_a_gentle_story_passes_and_one_menacing_line_fails_it() -> None:
    gentle = (
        "Once upon a time, a little dragon named Pip lived by the sea. Pip loved to watch the "
        "boats.\n\nOne night Pip could not sleep, so the moon sang him a soft song. Pip yawned, "
        "curled up in his warm cave and fell asleep, smiling."
    )
    assert check_story("Pip and the Moon", gentle).ok
    menacing = gentle.replace(
        "Pip loved to watch the boats.", "A strange man grabbed Pip and took him away in a sack."
    )
    verdict = check_story("Pip and the Moon", menacing)
    assert not verdict.ok and verdict.sentences


def test_a_story_is_embedded_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    embedder = meaning.embedder()
    original = type(embedder).__call__

    def counting(self, sentences, batch_size=64):  # type: ignore[no-untyped-def]
        calls.append(len(sentences))
        return original(self, sentences, batch_size)

    monkeypatch.setattr(type(embedder), "__call__", counting)
    meaning._CACHE.clear()
    check_story("A New Title For Batching", "One fresh line here. Two fresh lines here. Three.")
    # title and three sentences (all short), plus three distinct neighbour readings: the title
    # with the first line, line one with line two, lines two and three (shared by both)
    assert calls == [7]


@pytest.mark.parametrize("keyword", ["snail", "pirate", "the fox", "dragon"])
def test_a_bare_keyword_is_left_to_the_word_lists(keyword: str) -> None:
    verdict = check_text(keyword)
    assert verdict.ok and not verdict.sentences, verdict.as_dict()


@pytest.mark.parametrize("story", CALM_NEIGHBOUR_PROBE)
def test_harm_between_two_calm_sentences_still_fails_the_story(story: str) -> None:
    """Round 9c (bench/safety_rounds/session9_rule.md) read flagged sentences with their
    neighbours and let every one of these through: calm neighbours must not dilute harm."""
    verdict = check_story("A Story", story)
    assert not verdict.ok and verdict.sentences, verdict.as_dict()

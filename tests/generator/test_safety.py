"""The child-safety gate: whole words, any position, inflections, case, allow-list."""

from __future__ import annotations

import pytest

from generator.safety import check_story, check_text, load_blocklist, parse_blocklist


@pytest.mark.parametrize(
    "text",
    [
        "The little bear KILLED a fly and went to sleep.",  # mid-sentence, past tense, caps
        "Once upon a time, the knives in the kitchen sang.",  # irregular plural
        "They were dying to see the moon.",  # -ing form
        "The dragon's blood-red scales shone.",  # hyphenated compound
        "The pirates beat up the sailor.",  # phrase with an inflected first word
        "A ghost floated over the bed.",
        "Grandpa drank whiskey by the fire.",
        "The prince drew his Swords.",
        "What the hell was that?",  # better-profanity list
        "Daddy said a very bad shit word.",
    ],
)
def test_unsuitable_words_anywhere_are_caught(text: str) -> None:
    verdict = check_text(text)
    assert not verdict.ok
    assert verdict.reason and verdict.reason.startswith("unsafe:")


@pytest.mark.parametrize(
    "text",
    [
        "The bunny hopped to the garden and fell asleep under a bright star.",
        "A shooting star flew over the sea.",  # not "shoot"
        "Mom put a pot of honey on the table and pulled a weed.",  # allow-listed
        "They rolled the dice and laughed.",  # "dice" is an inflection of "die", allowed
        "Skillful kids killdeer watching",  # substrings of blocked words are not words
    ],
)
def test_bedtime_text_passes(text: str) -> None:
    assert check_text(text).ok, check_text(text).reason


def test_title_is_checked_too() -> None:
    assert not check_story("The Haunted Castle", "The bunny slept.").ok
    assert check_story("The Sleepy Castle", "The bunny slept.").ok


def test_categories_are_reported() -> None:
    verdict = check_text("The witch had a sword and some beer.")
    categories = {category for category, _ in verdict.matches}
    assert {"horror", "weapons", "drugs and alcohol"} <= categories


def test_custom_blocklist_format() -> None:
    blocklist = parse_blocklist(
        "# comment\n[sea]\nshark\nswim away\n!sharky\n", profanity_words={"darn"}
    )
    assert not check_text("Two Sharks!", blocklist).ok
    assert not check_text("The fish swam away.", blocklist).ok  # inflected phrase
    assert check_text("A sharky smile.", blocklist).ok
    assert not check_text("Darn it.", blocklist).ok
    assert check_text("Darned socks.", blocklist).ok  # profanity is matched exactly


def test_gate_is_fast_enough_for_the_live_path() -> None:
    import time

    load_blocklist()
    text = "The little owl flew over the quiet forest and sang to the moon. " * 30
    started = time.perf_counter()
    for _ in range(20):
        check_text(text)
    assert (time.perf_counter() - started) / 20 < 0.05

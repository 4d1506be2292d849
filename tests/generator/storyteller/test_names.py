"""Character-name drift: the rule that catches a hero who changes name mid-story."""

from __future__ import annotations

import pytest

from generator.storyteller.names import character_names, name_drift


def test_names_are_capitalised_words_inside_a_sentence() -> None:
    text = 'Once upon a time there was a kitten named Pip. "That is nice," said Mom to Pip.'
    assert character_names(text) == {"Pip"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A kitten named Catlit lived here. Later Catlithe smiled.", ["Catlit/Catlithe"]),
        ("The boy was called Alistair. Then Alstair went home.", ["Alistair/Alstair"]),
        ("A whale named Whisker swam. Soon Whiskerius sang.", ["Whisker/Whiskerius"]),
        ("A monkey named Sam played. Then Sam-Jake came too.", ["Sam-Jake"]),
    ],
)
def test_drifting_names_are_found(text: str, expected: list[str]) -> None:
    assert name_drift(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "A cat named Whisker slept. The toys of Whiskers were all around. Whisker's bed was warm.",
        "Lily and Luna played. Then Lily hugged Luna and Max waved.",
        '"That is fun," said Tom. "There it is," said Tom to Mom and Mommy.',
        "Tom met Tim by the pond, and Tom said hello to Tim.",
    ],
)
def test_steady_names_plurals_and_quotes_are_not_drift(text: str) -> None:
    assert name_drift(text) == []

"""The keyword normaliser: one canonical spelling shared by store, skill and generator."""

from __future__ import annotations

import pytest

from db.keywords import normalize_keyword, normalize_keywords, surface_forms


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("dragons", "dragon"),
        ("mice", "mouse"),
        ("the Princess", "princess"),
        ("fairies", "fairy"),
        ("teddy bears", "teddy bear"),
        ("Teddy-Bears!", "teddy-bear"),
        ("  a   Unicorn ", "unicorn"),
        ("The Dragon's", "dragon"),
        ("the dragons'", "dragon"),
        ("my teddy bear’s", "teddy bear"),
        ("wolves", "wolf"),
        ("geese", "goose"),
        ("teeth", "tooth"),
        ("sheep", "sheep"),
        ("princess", "princess"),
        ("octopus", "octopus"),
        ("bus", "bus"),
        ("dinosaur", "dinosaur"),
        ("zorblats", "zorblat"),  # unknown word: lemminflect's out-of-vocabulary rules
        ("café", "café"),  # unknown, not plural-looking: left alone
        ('"Quoted" Wolves', "quoted wolf"),
        ("100% cats", "100 cat"),
        ("back\\slash", "back slash"),
        ("drag_on", "drag on"),
        ("O'Brien", "o'brien"),
        ("was", "was"),  # known non-noun: not mangled into "wa"
        ("the", ""),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_normalize_keyword(raw: str, expected: str) -> None:
    assert normalize_keyword(raw) == expected


def test_normalize_is_idempotent() -> None:
    for raw in ["dragons", "teddy bears", "the Princess", "mice", "o'brien"]:
        once = normalize_keyword(raw)
        assert normalize_keyword(once) == once


def test_normalize_keywords_dedupes_in_order() -> None:
    assert normalize_keywords(["Dragons", "dragon", "the", "mice"]) == ["dragon", "mouse"]


@pytest.mark.parametrize(
    ("lemma", "expected"),
    [
        ("mouse", {"mouse", "mice"}),
        ("dragon", {"dragon", "dragons"}),
        ("teddy bear", {"teddy bear", "teddy bears"}),
        ("fairy", {"fairy", "fairies"}),
    ],
)
def test_surface_forms(lemma: str, expected: set[str]) -> None:
    assert expected <= surface_forms(lemma)


def test_surface_forms_of_nothing() -> None:
    assert surface_forms("  ") == set()

"""Choosing by length: "a short story", "a long story"; a preference, never a dead end."""

from __future__ import annotations

import itertools
import random

import pytest
from sqlalchemy.orm import Session

from db import store
from db.store import StoryDraft


def _add(session: Session, title: str, words: int, keywords: list[str]) -> int:
    text = " ".join(["sleepy"] * (words - 1) + ["end."])
    story = store.add_story(
        session,
        StoryDraft(title=title, text=text, keywords=keywords, review_status="approved"),
    )
    session.flush()
    return story.id


@pytest.fixture
def lengths(db_session: Session) -> dict[str, int]:
    return {
        "short": _add(db_session, "Short", 150, ["owl"]),
        "medium": _add(db_session, "Medium", 350, ["owl"]),
        "long": _add(db_session, "Long", 900, ["owl"]),
    }


@pytest.mark.parametrize("length", ["short", "medium", "long"])
@pytest.mark.parametrize("keywords", [["owl"], []])
def test_the_asked_length_is_chosen(
    db_session: Session, lengths: dict[str, int], length: str, keywords: list[str]
) -> None:
    for seed in range(5):
        choice = store.choose_story(
            db_session, keywords, "listener", "en-US", rng=random.Random(seed), length=length
        )
        assert choice.story is not None and choice.story.id == lengths[length]
        assert choice.length_matched


def test_another_length_when_the_asked_one_is_heard(
    db_session: Session, lengths: dict[str, int]
) -> None:
    store.record_play(db_session, "listener", lengths["long"])
    choice = store.choose_story(db_session, ["owl"], "listener", "en-US", length="long")
    assert choice.story is not None and choice.story.id != lengths["long"]
    assert choice.match == "unheard" and not choice.length_matched


def test_partial_matches_honour_length(db_session: Session, lengths: dict[str, int]) -> None:
    choice = store.choose_story(db_session, ["owl", "submarine"], None, "en-US", length="short")
    assert choice.match == "partial" and choice.story is not None
    assert choice.story.id == lengths["short"] and choice.length_matched


def test_bands_cover_every_length_once() -> None:
    bands = sorted(store.LENGTH_BANDS.values())
    assert bands[0][0] == 0
    assert all(low == previous[1] for previous, (low, _) in itertools.pairwise(bands))
    assert store.DEFAULT_LENGTH in store.LENGTH_BANDS

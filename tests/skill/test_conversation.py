"""Plain-Python pieces of the conversation: no Alexa envelopes involved."""

from __future__ import annotations

from typing import Any

import pytest

from skill.conversation import (
    Bookmark,
    Conversation,
    ListenerState,
    SpokenKeyword,
    topic_words,
    truncate,
)
from skill.i18n import translator_for


@pytest.mark.parametrize("data", [None, "x", {}, {"story_id": "abc"}, {"part": 2}])
def test_malformed_bookmarks_are_ignored(data: Any) -> None:
    assert Bookmark.from_dict(data) is None


def test_bookmark_round_trip() -> None:
    mark = Bookmark(story_id=5, title="T", part=3, keywords=["owl"])
    assert Bookmark.from_dict(mark.to_dict()) == mark


def test_listener_state_round_trip() -> None:
    state = ListenerState("key", Bookmark(1, "T", 0, []), 1, ["moon"], "go_on", ["moon"])
    again = ListenerState.from_attributes(
        "key", state.persistent_attributes(), state.session_attributes()
    )
    assert again == state


def test_truncate() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("one two three four five", 12)
    assert cut == "one two…" and len(cut) <= 12


@pytest.mark.parametrize(
    ("lemma", "said"), [("dragon", "dragons"), ("mouse", "mice"), ("fire truck", "fire trucks")]
)
def test_topic_words_are_plural(lemma: str, said: str) -> None:
    assert topic_words(lemma) == said


def test_keywords_resolve_through_the_store(db_session: Any, seeded: Any) -> None:
    talk = Conversation(db_session, ListenerState(), translator_for("en-US"), "en-US")
    resolved = talk.resolve(
        [
            SpokenKeyword("Dragons"),
            SpokenKeyword("the dragon"),
            SpokenKeyword("kitty", canonical="cat"),
            SpokenKeyword("!!!"),
        ]
    )
    assert resolved == [("dragon", "Dragons"), ("cat", "kitty")]


def test_story_locale_falls_back_to_the_catalogue_default(db_session: Any, seeded: Any) -> None:
    talk = Conversation(
        db_session, ListenerState(), translator_for("en-GB"), "en-GB", fallback_locale="en-US"
    )
    assert talk.locale == "en-US"

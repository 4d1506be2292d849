"""Articles and plurals: what the templates of every locale say around a keyword."""

from __future__ import annotations

import re
from typing import Any

import pytest

from skill import phrasing
from skill.conversation import Conversation, ListenerState, SpokenKeyword
from skill.i18n import SUPPORTED_LOCALES, translator_for
from skill.ssml import Speech


@pytest.mark.parametrize(
    ("said", "one", "many"),
    [
        ("submarine", "a submarine", "submarines"),
        ("owl", "an owl", "owls"),
        ("unicorn", "a unicorn", "unicorns"),
        ("moon", "the moon", "the moon"),
        ("ocean", "the ocean", "the ocean"),
        ("rain", "rain", "rain"),
        ("teddy bear", "a teddy bear", "teddy bears"),
        ("mouse", "a mouse", "mice"),
        ("stars", "the stars", "the stars"),
        ("fireflies", "fireflies", "fireflies"),
        ("the dragon", "the dragon", "the dragon"),
    ],
)
def test_one_and_many(said: str, one: str, many: str) -> None:
    assert phrasing.one(said) == one
    assert phrasing.many(said) == many


def _plain(speech: Speech) -> str:
    return re.sub(r"<[^>]+>", " ", speech.ssml())


#: A bare singular noun after "about" is the mistake the issue heard: "a story about submarine".
_BARE = re.compile(r"about (submarine|kite|moon|owl|dragon|bear)\b")


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_unknown_topics_are_said_with_articles(locale: str, db_session: Any, seeded: Any) -> None:
    talk = Conversation(db_session, ListenerState(), translator_for(locale), locale)
    reply = talk.tell([SpokenKeyword("submarine"), SpokenKeyword("unicorn")])
    text = _plain(reply.speech)
    assert "a submarine and a unicorn" in text
    assert not _BARE.search(text + " " + (reply.reprompt or "")), text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_partial_matches_name_one_thing_with_an_article(
    locale: str, db_session: Any, seeded: Any
) -> None:
    talk = Conversation(db_session, ListenerState(), translator_for(locale), locale)
    reply = talk.tell([SpokenKeyword("kite"), SpokenKeyword("submarine")])
    text = _plain(reply.speech)
    assert "about a kite and a submarine" in text, text
    assert "here is one about a kite" in text, text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_template_around_a_topic_reads_well(locale: str) -> None:
    """Fill each template with what the conversation passes in; no bare nouns anywhere."""
    translate = translator_for(locale)
    wanted = translate.join(phrasing.ones(["kite", "moon"]))
    values = {
        "wanted": wanted,
        "topic": wanted,
        "suggestions": translate.join(phrasing.manys(["kite", "owl", "moon"])),
        "choices": translate.join(phrasing.ones(["kite", "owl", "moon"]), conjunction="or"),
        "title": "T",
    }
    for key in sorted(translate.keys()):
        needed = translate.placeholders(key)
        if not needed & {"wanted", "topic", "suggestions", "choices"}:
            continue
        text = translate(key, **{name: values.get(name, "x") for name in needed})
        assert not _BARE.search(text), (locale, key, text)
        assert "a moon" not in text and "moons" not in text, (locale, key, text)

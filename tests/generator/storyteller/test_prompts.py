"""The storyteller's conversation format: how a story is asked for and how the reply is read."""

from __future__ import annotations

import pytest

from generator.storyteller.prompts import (
    LENGTH_REQUESTS,
    SYSTEM_PROMPT,
    Reply,
    chat_messages,
    format_reply,
    join_words,
    length_for_words,
    parse_reply,
    story_request,
    with_article,
)


@pytest.mark.parametrize(
    ("noun", "expected"),
    [
        ("kite", "a kite"),
        ("owl", "an owl"),
        ("moon", "the moon"),
        ("rain", "rain"),
        ("stars", "stars"),
        ("unicorn", "a unicorn"),
        ("  kite ", "a kite"),
        ("Moon", "the Moon"),
        ("bus", "a bus"),
        ("", ""),
    ],
)
def test_with_article(noun: str, expected: str) -> None:
    assert with_article(noun) == expected


def test_join_words() -> None:
    assert join_words([]) == ""
    assert join_words(["a"]) == "a"
    assert join_words(["a", "", "b"]) == "a and b"
    assert join_words(["a", "b", "c"]) == "a, b and c"


@pytest.mark.parametrize(
    ("keywords", "about"),
    [
        (["dragon"], "a dragon"),
        (["dragon", "boat"], "a dragon and a boat"),
        (["owl", "moon", "rain"], "an owl, the moon and rain"),
    ],
)
@pytest.mark.parametrize("length", list(LENGTH_REQUESTS))
def test_story_request(keywords: list[str], about: str, length: str) -> None:
    assert story_request(keywords, length) == f"{LENGTH_REQUESTS[length]} about {about}."


def test_story_request_wording_per_length() -> None:
    assert story_request(["kite"], "short") == "Write a short bedtime story about a kite."
    assert story_request(["kite"]) == "Write a bedtime story about a kite."
    assert story_request(["kite"], "long") == "Write a long bedtime story about a kite."
    assert story_request([], "medium") == "Write a bedtime story."


def test_story_request_unknown_length() -> None:
    with pytest.raises(ValueError, match="length must be one of short, medium, long"):
        story_request(["kite"], "epic")


def test_chat_messages() -> None:
    messages = chat_messages(["kite", "moon"], "short")
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Write a short bedtime story about a kite and the moon."},
    ]


def test_parse_reply_with_title() -> None:
    reply = parse_reply("Title: The Sleepy Owl\n\nOnce upon a time an owl yawned.\n\nThe end.")
    assert reply == Reply("The Sleepy Owl", "Once upon a time an owl yawned.\n\nThe end.")


def test_parse_reply_without_title() -> None:
    text = "Once upon a time an owl yawned. It went to sleep."
    assert parse_reply(text) == Reply(None, text)
    assert parse_reply("  \n ") == Reply(None, "")


@pytest.mark.parametrize(
    "first_line",
    [
        "**Title: The Sleepy Owl**",
        "# Title: The Sleepy Owl",
        "## title: The Sleepy Owl",
        'Title: "The Sleepy Owl"',
        "  TITLE :  The Sleepy Owl  ",
    ],
)
def test_parse_reply_decorated_title(first_line: str) -> None:
    reply = parse_reply(f"{first_line}\nThe owl yawned.")
    assert reply.title == "The Sleepy Owl"
    assert reply.text == "The owl yawned."


def test_parse_reply_title_only() -> None:
    assert parse_reply("Title: Alone") == Reply("Alone", "")
    assert parse_reply("Title: **") == Reply(None, "")


def test_title_word_later_in_story_is_not_a_title() -> None:
    text = "The owl read a book.\nTitle: not this"
    assert parse_reply(text) == Reply(None, text)


def test_format_parse_round_trip() -> None:
    reply = format_reply("  The Kite and the Moon ", "\nA kite flew.\n\nThe moon smiled.\n")
    assert reply == "Title: The Kite and the Moon\n\nA kite flew.\n\nThe moon smiled."
    assert parse_reply(reply) == Reply("The Kite and the Moon", "A kite flew.\n\nThe moon smiled.")


@pytest.mark.parametrize(
    ("words", "length"),
    [(100, "short"), (259, "short"), (260, "medium"), (560, "medium"), (561, "long")],
)
def test_length_for_words(words: int, length: str) -> None:
    assert length_for_words(words) == length

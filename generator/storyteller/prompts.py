"""The storyteller's conversation format: one place that says how we ask for a story and how we
read the answer. Training, generation and evaluation all go through it, so they cannot drift.

A request is a chat turn ("Write a bedtime story about a kite and the moon."); the reply is
``Title: <title>`` on its first line, a blank line, then the story.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: The chat template's end of a turn: where a reply stops (SmolLM2-Instruct's ChatML).
END_TOKEN = "<|im_end|>"

SYSTEM_PROMPT = (
    "You are a gentle storyteller. You write calm, simple bedtime stories for young children: "
    "kind characters, no danger, and a cosy, sleepy, happy ending."
)

#: Story lengths a listener can ask for, and the request wording each one trains and generates.
LENGTH_REQUESTS = {
    "short": "Write a short bedtime story",
    "medium": "Write a bedtime story",
    "long": "Write a long bedtime story",
}

#: Nouns that read best with "the" (there is one of them) or with no article (mass nouns).
_THE_NOUN_WORDS = (
    "moon sun sky sea ocean earth world wind night forest jungle desert beach river "
    "north pole countryside seaside weather dark zoo circus park library museum"
)
_BARE_NOUN_WORDS = (
    "rain snow ice fog thunder lightning music water milk honey bread chocolate cheese "
    "sand grass space magic love friendship kindness courage sleep bedtime candy cake "
    "soup tea hair christmas halloween easter spring summer autumn winter fall"
)
_THE_NOUNS = frozenset(_THE_NOUN_WORDS.split())
_BARE_NOUNS = frozenset(_BARE_NOUN_WORDS.split())
_TITLE_RE = re.compile(r"^\s*(?:#+\s*)?\**\s*title\s*:\s*(?P<title>.+?)\s*\**\s*$", re.I | re.M)


def with_article(noun: str) -> str:
    """'a kite', 'an owl', 'the moon', 'rain', 'kites' — how a keyword reads in a sentence."""
    word = noun.strip()
    lower = word.lower()
    if not lower or lower in _BARE_NOUNS:
        return word
    if lower in _THE_NOUNS:
        return f"the {word}"
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return word  # already plural: "stars", "puppies"
    article = "an" if lower[0] in "aeiou" and not lower.startswith(("uni", "use", "eu")) else "a"
    return f"{article} {word}"


def join_words(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def story_request(keywords: Sequence[str], length: str = "medium") -> str:
    """The user turn: 'Write a bedtime story about a dragon and a boat.'"""
    if length not in LENGTH_REQUESTS:
        raise ValueError(f"length must be one of {', '.join(LENGTH_REQUESTS)}")
    about = join_words([with_article(k) for k in keywords])
    return f"{LENGTH_REQUESTS[length]} about {about}." if about else f"{LENGTH_REQUESTS[length]}."


def chat_messages(keywords: Sequence[str], length: str = "medium") -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": story_request(keywords, length)},
    ]


def format_reply(title: str, text: str) -> str:
    """The assistant turn the model is trained to write."""
    return f"Title: {title.strip()}\n\n{text.strip()}"


@dataclass(frozen=True)
class Reply:
    title: str | None
    text: str


def parse_reply(reply: str) -> Reply:
    """Split a reply into title and story; tolerate a missing or decorated title line."""
    reply = reply.strip()
    match = _TITLE_RE.match(reply.split("\n", 1)[0]) if reply else None
    if match:
        title = match["title"].strip().strip("\"'*").strip()
        body = reply.split("\n", 1)[1] if "\n" in reply else ""
        return Reply(title or None, body.strip())
    return Reply(None, reply)


def length_for_words(words: int) -> str:
    """Which request a training story of this many words answers."""
    if words < 260:
        return "short"
    if words > 560:
        return "long"
    return "medium"

"""The prompt format shared by training, batch generation and live generation.

This module is the contract between the trainer and every consumer of the model: it must stay
torch-free and stable. A training example looks like::

    <|keywords|> fox, moon<|title|> The Fox Who Visited the Moon<|story|> Once ...<|endoftext|>

Generation feeds :func:`build_prompt` (keywords, optionally a title) and reads the continuation
with :func:`parse_generation`. Keywords are canonical lower-case singular lemmas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KEYWORD_TOKEN = "<|keywords|>"
TITLE_TOKEN = "<|title|>"
STORY_TOKEN = "<|story|>"
END_TOKEN = "<|endoftext|>"
#: Every special token the tokenizer must know, END_TOKEN first (it is also bos/eos/pad).
SPECIAL_TOKENS: tuple[str, ...] = (END_TOKEN, KEYWORD_TOKEN, TITLE_TOKEN, STORY_TOKEN)
KEYWORD_SEPARATOR = ", "
#: Keywords per training example (the reference used 3 title nouns).
MAX_KEYWORDS = 3


def _clean_keywords(keywords: Sequence[str]) -> list[str]:
    """Lower-case, strip, drop empties and duplicates while keeping order."""
    seen: list[str] = []
    for keyword in keywords:
        kw = str(keyword).lower()
        for token in SPECIAL_TOKENS:
            kw = kw.replace(token, " ")
        kw = " ".join(kw.replace(",", " ").split())
        if kw and kw not in seen:
            seen.append(kw)
    return seen


def format_keywords(keywords: Sequence[str]) -> str:
    """The keyword part of a prompt: ``<|keywords|> a, b, c``."""
    cleaned = _clean_keywords(keywords)
    return KEYWORD_TOKEN + (" " + KEYWORD_SEPARATOR.join(cleaned) if cleaned else "")


def build_prompt(keywords: Sequence[str], title: str | None = None) -> str:
    """What generation feeds the model.

    Without a title the prompt ends at ``<|title|>`` so the model invents a title, then writes
    ``<|story|>`` and the story; with a title it ends at ``<|story|>``.
    """
    prompt = format_keywords(keywords) + TITLE_TOKEN
    if title is not None:
        prompt += " " + " ".join(title.split()) + STORY_TOKEN
    return prompt


def format_training_example(title: str, text: str, keywords: Sequence[str]) -> str:
    """One training document; ``build_prompt(keywords, title)`` is an exact prefix of it."""
    title_part = (" " + " ".join(title.split())) if title.strip() else ""
    return (
        format_keywords(keywords)
        + TITLE_TOKEN
        + title_part
        + STORY_TOKEN
        + " "
        + text.strip()
        + END_TOKEN
    )


def format_unconditional(text: str) -> str:
    """A story with no keywords or title (used for keyword dropout and bits-per-char eval)."""
    return STORY_TOKEN + " " + text.strip() + END_TOKEN


@dataclass(frozen=True)
class ParsedStory:
    """A generated continuation split into its parts."""

    title: str | None
    text: str
    finished: bool  # True when the model emitted END_TOKEN (the story was not cut off)


def parse_generation(continuation: str, title: str | None = None) -> ParsedStory:
    """Split what the model wrote after :func:`build_prompt` into title and story text.

    Pass the same ``title`` given to ``build_prompt`` (None when the model wrote the title).
    """
    finished = END_TOKEN in continuation
    body = continuation.split(END_TOKEN, 1)[0]
    if title is None and STORY_TOKEN in body:
        generated_title, body = body.split(STORY_TOKEN, 1)
        title = " ".join(generated_title.split()) or None
    for token in SPECIAL_TOKENS:
        body = body.replace(token, " ")
    return ParsedStory(title=title, text=body.strip(), finished=finished)

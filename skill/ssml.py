"""SSML building: escaping, calm story prosody, and splitting long stories to fit Alexa's limits.

Story text comes from a model or an import, so it may contain ``&``, ``<``, quotes or control
characters; all of it is escaped here and nowhere else, so one odd story can never break a
response. Alexa rejects an ``outputSpeech`` over 8,000 characters and a response over 24 KB; parts
are sized with headroom for the intro, the question, the card and the APL copy of the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

#: Hard Alexa limit for one outputSpeech, in characters (including <speak> tags).
MAX_SPEECH_CHARS = 8000
#: Alexa's limit for the whole response body.
MAX_RESPONSE_BYTES = 24 * 1024
#: Budget for the story SSML of one part, leaving room for intro/question (< 1,000 chars) and
#: keeping the JSON-escaped speech plus its APL/card copies under 24 KB.
PART_BUDGET = 5000
#: Plain-text story characters per part: about three minutes of calm speech, a natural spot to ask
#: "Shall I go on?".
PART_TARGET_CHARS = 3000

STORY_RATE = "90%"
PARAGRAPH_BREAK = '<break time="900ms"/>'
SENTENCE_BREAK = '<break time="400ms"/>'

# XML 1.0 forbids most C0 control characters; Alexa rejects SSML that contains them.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_ESCAPE_RE = re.compile("[&<>\"']")
_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")


def escape(text: str) -> str:
    """Text safe inside an SSML element: markup characters escaped, control characters dropped."""
    text = _INVALID_XML.sub("", text)
    return _ESCAPE_RE.sub(lambda match: _ESCAPES[match.group(0)], text)


def json_size(text: str) -> int:
    """Bytes this string takes in a JSON response body (worst case: ASCII-escaped)."""
    return len(json.dumps(text))


def paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs, whitespace inside each collapsed."""
    found = [" ".join(chunk.split()) for chunk in _PARAGRAPH_SPLIT.split(text.strip())]
    return [chunk for chunk in found if chunk]


def _story_ssml(paras: list[str]) -> str:
    body = PARAGRAPH_BREAK.join(escape(para) for para in paras)
    return f'<prosody rate="{STORY_RATE}">{body}</prosody>'


def _cost(paras: list[str]) -> int:
    ssml = _story_ssml(paras)
    return max(len(ssml), json_size(ssml))


def _split_oversized(para: str) -> list[str]:
    """Break one paragraph that alone exceeds the budget: at sentences, then at words."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(para):
        if _cost([sentence]) <= PART_BUDGET:
            pieces.append(sentence)
            continue
        current: list[str] = []
        for word in sentence.split(" "):
            if _cost([" ".join([*current, word])]) > PART_BUDGET and current:
                pieces.append(" ".join(current))
                current = []
            if _cost([word]) > PART_BUDGET:  # a single absurd "word": cut it by characters
                step = max(1, len(word) * PART_BUDGET // (2 * _cost([word])))
                pieces.extend(word[i : i + step] for i in range(0, len(word), step))
                continue
            current.append(word)
        if current:
            pieces.append(" ".join(current))
    # Re-pack small sentences back together so parts stay as large as allowed.
    packed: list[str] = []
    for piece in pieces:
        if packed and _cost([f"{packed[-1]} {piece}"]) <= PART_BUDGET:
            packed[-1] = f"{packed[-1]} {piece}"
        else:
            packed.append(piece)
    return packed


def split_story(text: str) -> list[list[str]]:
    """Story paragraphs grouped into parts; each part's SSML fits :data:`PART_BUDGET`.

    Deterministic, so a part index saved last night still points at the same words today.
    """
    units: list[str] = []
    for para in paragraphs(text):
        units.extend([para] if _cost([para]) <= PART_BUDGET else _split_oversized(para))
    parts: list[list[str]] = []
    current: list[str] = []
    for unit in units:
        candidate = [*current, unit]
        too_long = sum(len(p) for p in candidate) > PART_TARGET_CHARS
        if current and (too_long or _cost(candidate) > PART_BUDGET):
            parts.append(current)
            current = [unit]
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts or [[""]]


@dataclass
class Speech:
    """Builds the inner SSML of one outputSpeech from plain sentences and trusted fragments."""

    fragments: list[str] = field(default_factory=list)

    def say(self, text: str) -> Speech:
        if text:
            self.fragments.append(escape(text))
        return self

    def pause(self, fragment: str = SENTENCE_BREAK) -> Speech:
        self.fragments.append(fragment)
        return self

    def trusted(self, fragment: str) -> Speech:
        """SSML built by our own code (skill/delivery.py), already escaped."""
        self.fragments.append(fragment)
        return self

    def story(self, paras: list[str]) -> Speech:
        self.fragments.append(_story_ssml(paras))
        return self

    def ssml(self) -> str:
        """Inner SSML; the response builder adds the <speak> wrapper."""
        return " ".join(self.fragments)

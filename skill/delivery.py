"""Sleep-friendly delivery: the voice slows and softens across a story and within its last part.

Good bedtime audio winds down as the child drifts off. Every story we tell does the same: each part
is a little slower and softer than the one before, and the last part keeps falling paragraph by
paragraph, with longer pauses between paragraphs, until the closing words. All values stay inside
what Alexa's SSML supports (``rate`` as a percentage of at least 20%, ``volume`` in dB between
-inf and +4.08dB, ``break`` up to 10s) and far from its extremes, so speech stays clear.

A device whose grown-up turned the sleepy voice off (skill/preferences.py) gets the old, steady
delivery: one rate, one pause length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skill.ssml import PARAGRAPH_BREAK, STORY_RATE, escape

#: Where a story starts and where its last paragraph ends (rate %, volume dB).
START_RATE, END_RATE = 90, 72
START_VOLUME_DB, END_VOLUME_DB = 0.0, -4.0
#: Share of the whole fall spent before the last part begins; the rest happens within it.
FALL_BEFORE_LAST_PART = 0.4
#: Paragraph pauses grow from the first paragraph to the last one.
START_PAUSE_MS, END_PAUSE_MS = 1200, 2200


@dataclass(frozen=True)
class Prosody:
    """One paragraph's voice: rate in percent, volume in dB (0 = unchanged)."""

    rate: int
    volume_db: float

    def wrap(self, text: str) -> str:
        volume = f"{self.volume_db:+.1f}dB"
        return f'<prosody rate="{self.rate}%" volume="{volume}">{text}</prosody>'


def _at(fraction: float) -> Prosody:
    """The voice at ``fraction`` (0 = first word, 1 = last word) of the story's wind-down."""
    fraction = min(max(fraction, 0.0), 1.0)
    rate = round(START_RATE + (END_RATE - START_RATE) * fraction)
    volume = START_VOLUME_DB + (END_VOLUME_DB - START_VOLUME_DB) * fraction
    return Prosody(rate, round(volume, 1))


def paragraph_voices(part: int, parts: int, paragraphs: int) -> list[Prosody]:
    """The voice of each paragraph of ``part`` (0-based) in a story of ``parts`` parts.

    Parts before the last share :data:`FALL_BEFORE_LAST_PART` of the fall in equal steps, one
    voice per part; the last part falls the rest of the way across its paragraphs.
    """
    parts = max(parts, 1)
    start = 0.0 if parts == 1 else FALL_BEFORE_LAST_PART * min(part, parts - 1) / (parts - 1)
    if part < parts - 1:
        return [_at(start)] * paragraphs
    if paragraphs <= 1:
        return [_at(1.0)] * paragraphs
    return [_at(start + (1.0 - start) * i / (paragraphs - 1)) for i in range(paragraphs)]


def pause_ms(part: int, parts: int, gap: int, gaps: int) -> int:
    """Pause before paragraph ``gap + 1``: longer as the story goes on (whole story, 0→1)."""
    parts = max(parts, 1)
    progress = (part + (gap + 1) / (gaps + 1)) / parts
    return round((START_PAUSE_MS + (END_PAUSE_MS - START_PAUSE_MS) * progress) / 100) * 100


def story_part_ssml(paras: Sequence[str], part: int, parts: int, sleepy: bool = True) -> str:
    """SSML for one part of a story: sleepy (falling voice, growing pauses) or steady."""
    if not sleepy:
        body = PARAGRAPH_BREAK.join(escape(para) for para in paras)
        return f'<prosody rate="{STORY_RATE}">{body}</prosody>'
    voices = paragraph_voices(part, parts, len(paras))
    pieces: list[str] = []
    for index, (para, voice) in enumerate(zip(paras, voices, strict=True)):
        if index:
            pieces.append(f'<break time="{pause_ms(part, parts, index - 1, len(paras) - 1)}ms"/>')
        pieces.append(voice.wrap(escape(para)))
    return "".join(pieces)


def closing_ssml(lines: Sequence[str], sleepy: bool = True) -> str:
    """The goodnight ritual: each line slow and soft, with long pauses to breathe."""
    voice = _at(1.0) if sleepy else Prosody(int(STORY_RATE.rstrip("%")), 0.0)
    pause = f' <break time="{END_PAUSE_MS}ms"/> '
    return pause.join(voice.wrap(escape(line)) for line in lines if line)

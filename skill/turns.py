"""What one turn returns (:class:`Reply`) and what a later "yes" or "no" answers (``PENDING_*``).

Plain Python, no Alexa types: skill/conversation.py and skill/night.py build replies,
skill/responses.py turns them into ASK responses.
"""

from __future__ import annotations

from dataclasses import dataclass

from skill import sleep_sounds
from skill.ssml import Speech

#: What a "yes" or "no" answers; kept in session attributes between turns.
PENDING_RESUME = "resume"  # "Shall I carry on?" after a stopped story
PENDING_GO_ON = "go_on"  # "Shall I go on?" between parts
PENDING_OFFER = "offer"  # "Would you like (another) story …?" about state.offer_keywords
PENDING_TOPIC = "topic"  # "What would you like a story about?"
PENDING_NEXT_STORY = "next_story"  # "Ready for your next story?" when several were asked for
PENDING_SLEEP_SOUND = "sleep_sound"  # "Shall I play some gentle rain while you fall asleep?"


@dataclass
class Display:
    """What a screen shows for a story part (APL)."""

    title: str
    paragraphs: list[str]
    part: int
    parts: int


@dataclass
class Reply:
    """One turn's answer, independent of the ASK response model."""

    speech: Speech
    reprompt: str | None = None
    end_session: bool = False
    card_title: str | None = None
    card_text: str | None = None
    display: Display | None = None
    elicit_slot: str | None = None
    audio: sleep_sounds.Stream | None = None  # an AudioPlayer.Play of a sleep sound

"""The end of a bedtime: the next queued story, the goodnight ritual, sleep sounds, switches.

Part of :class:`skill.conversation.Conversation` (a mixin, so the story-telling flow and the
winding-down flow each read top to bottom in their own file). Order of a night:
story → ("two stories": the next one) → goodnight ritual → (if wanted) rain or the ocean.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from skill import delivery, sleep_sounds
from skill.i18n import Translator
from skill.preferences import FEATURES, Preferences
from skill.ssml import PARAGRAPH_BREAK, Speech
from skill.turns import PENDING_NEXT_STORY, PENDING_OFFER, PENDING_SLEEP_SOUND, Reply

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from skill.conversation import ListenerState

logger = logging.getLogger(__name__)

#: Keys of the goodnight ritual's lines in skill/locales, said in this order.
GOODNIGHT_LINES = ("goodnight_ritual_1", "goodnight_ritual_2", "goodnight_ritual_3")


class NightMixin:
    """Winding down; needs the attributes :class:`Conversation` sets in ``__init__``."""

    session: Session
    state: ListenerState
    _: Translator
    device_id: str | None
    sound_base_url: str | None
    sounds: list[str]

    @property
    def preferences(self) -> Preferences:  # pragma: no cover - Conversation's
        raise NotImplementedError

    @preferences.setter
    def preferences(self, value: Preferences) -> None:  # pragma: no cover - Conversation's
        raise NotImplementedError

    def tell_about(self, keywords: Sequence[str]) -> Reply:  # pragma: no cover - Conversation's
        raise NotImplementedError

    # ----------------------------------------------------------------- after a story
    def _after_story(self, reply: Reply) -> Reply:
        """A story just ended: the next queued one, goodnight, or "another story?"."""
        if self.state.stories_left > 0:  # one of the stories asked for ("two stories")
            self.state.stories_left -= 1
            if self.state.stories_left == 0:
                return self.end_of_night(reply)
            self.state.pending = PENDING_NEXT_STORY
            reply.speech.say(self._("next_story_question"))
            reply.reprompt = self._("next_story_reprompt")
            return reply
        self.state.pending = PENDING_OFFER
        reply.speech.say(self._("another_question"))
        reply.reprompt = self._("another_reprompt")
        return reply

    def next_story(self) -> Reply:
        """The next of the stories asked for ("two stories"), about the same things."""
        return self.tell_about(self.state.offer_keywords)

    # ----------------------------------------------------------------- goodnight
    def _goodnight(self, speech: Speech) -> Speech:
        """The closing ritual (or a plain goodnight where a grown-up switched it off)."""
        if not self.preferences.goodnight:
            return speech.say(self._("goodbye"))
        lines = [self._(key) for key in GOODNIGHT_LINES]
        return speech.trusted(delivery.closing_ssml(lines, self.preferences.sleepy_voice))

    def end_of_night(self, reply: Reply) -> Reply:
        """Goodnight after the last story; then offer a sleep sound when there is one to play."""
        self._goodnight(reply.speech)
        reply.reprompt = None
        if self.preferences.sleep_sounds and self.sounds:
            self.state.pending = PENDING_SLEEP_SOUND
            sound = self._sound_name(self._default_sound())
            question = self._("sleep_sound_offer", sound=sound)
            reply.speech.pause(PARAGRAPH_BREAK).say(question)
            reply.reprompt = question
            return reply
        self.state.pending = None
        reply.end_session = True
        return reply

    # ----------------------------------------------------------------- sleep sounds
    def _default_sound(self) -> str:
        if sleep_sounds.DEFAULT_SOUND in self.sounds:
            return sleep_sounds.DEFAULT_SOUND
        return self.sounds[0]

    def _sound_name(self, sound: str) -> str:
        return self._(f"sound_{sound}")

    def play_sleep_sound(self, sound: str | None, duration: str | None) -> Reply:
        """ "Play rain for twenty minutes": an AudioPlayer stream that stops on time."""
        self.state.pending = None
        if not self.preferences.sleep_sounds:
            return Reply(Speech().say(self._("sleep_sounds_off")), end_session=True)
        if not self.sounds or not self.sound_base_url:
            logger.info("Sleep sound asked for, but none is set up (BEDTIME_PUBLIC_URL, files)")
            return Reply(Speech().say(self._("sleep_sounds_unavailable")), end_session=True)
        chosen = sound if sound in self.sounds else self._default_sound()
        minutes = sleep_sounds.minutes_from_duration(duration)
        stream = sleep_sounds.first_stream(self.sound_base_url, chosen, minutes)
        speech = Speech().say(
            self._("sleep_sound_start", sound=self._sound_name(chosen), minutes=minutes)
        )
        return Reply(speech, end_session=True, audio=stream)

    # ----------------------------------------------------------------- a grown-up's switches
    def set_preference(self, feature: str | None, on: bool) -> Reply:
        """ "Turn off the sleepy voice": stored for this device only."""
        if feature not in FEATURES:
            return Reply(
                Speech().say(self._("preference_unknown")),
                reprompt=self._("preference_unknown"),
            )
        if self.device_id is None:
            return Reply(Speech().say(self._("preference_no_device")), end_session=True)
        self.preferences = self.preferences.switched(feature, on)  # kept with the listener
        key = "preference_on" if on else "preference_off"
        speech = Speech().say(self._(key, feature=self._(f"feature_{feature}")))
        return Reply(speech, end_session=True)

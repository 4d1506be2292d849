"""Sleep sounds and a grown-up's switches: SleepSoundIntent, PreferenceIntent, AudioPlayer events.

AudioPlayer requests arrive outside any session and may not speak; they only log, or enqueue the
next loop of a sleep sound until its timer ends (skill/sleep_sounds.py). These specific handlers
are registered before any generic acknowledgement of AudioPlayer requests.
"""

from __future__ import annotations

import logging

from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import is_intent_name, is_request_type
from ask_sdk_model import Response
from ask_sdk_model.interfaces.audioplayer import PlayBehavior, PlayerActivity, StopDirective

from skill import intents, sleep_sounds
from skill.handlers.base import ServiceHandler, slot_choice, slot_text
from skill.responses import play_directive, respond
from skill.services import TRANSLATOR_KEY
from skill.ssml import escape

logger = logging.getLogger(__name__)

PLAYBACK_EVENTS = (
    "AudioPlayer.PlaybackStarted",
    "AudioPlayer.PlaybackStopped",
    "AudioPlayer.PlaybackFinished",
)


class SleepSoundIntentHandler(ServiceHandler):
    """ "Play rain for twenty minutes"."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.SLEEP_SOUND)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        sound = slot_choice(handler_input, intents.SOUND_SLOT)
        duration = slot_text(handler_input, intents.DURATION_SLOT)
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.play_sleep_sound(sound, duration))


class FeatureOffIntentHandler(ServiceHandler):
    """ "Turn off the sleepy voice": a switch for this device."""

    switch_on = False

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.FEATURE_OFF)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        feature = slot_choice(handler_input, intents.FEATURE_SLOT)
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.set_preference(feature, self.switch_on))


class FeatureOnIntentHandler(FeatureOffIntentHandler):
    """ "Turn the sleepy voice back on"."""

    switch_on = True

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.FEATURE_ON)(handler_input)


#: While the listener speaks, devices report the stream as playing, or as paused/stopped for the
#: moment of the interaction; all of them mean "the rain is on" while its timer runs.
_SOUNDING = (
    PlayerActivity.PLAYING,
    PlayerActivity.BUFFER_UNDERRUN,
    PlayerActivity.PAUSED,
    PlayerActivity.STOPPED,
)


def _sleep_sound_playing(handler_input: HandlerInput) -> bool:
    """True while one of our sleep sounds is the device's stream and its timer has not run out."""
    context = handler_input.request_envelope.context
    player = context.audio_player if context is not None else None
    token = sleep_sounds.SoundToken.decode(player.token if player is not None else None)
    if player is None or token is None:
        return False
    return player.player_activity in _SOUNDING and token.ends_at > sleep_sounds.now_seconds()


class SleepSoundStopHandler(ServiceHandler):
    """ "Alexa, stop" (or pause/cancel) while rain plays: stop the stream, say goodnight."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        name_matches = any(
            is_intent_name(name)(handler_input)
            for name in (intents.PAUSE, intents.STOP, intents.CANCEL)
        )
        return name_matches and _sleep_sound_playing(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        logger.info("Sleep sound stopped by the listener")
        translate = handler_input.attributes_manager.request_attributes[TRANSLATOR_KEY]
        builder = handler_input.response_builder
        builder.speak(escape(translate("sleep_sound_stopped")))
        builder.add_directive(StopDirective())
        builder.set_should_end_session(True)
        return builder.response


class PlaybackNearlyFinishedHandler(ServiceHandler):
    """Enqueue the next loop of the sleep sound, or nothing once its timer is up."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("AudioPlayer.PlaybackNearlyFinished")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        request = handler_input.request_envelope.request
        builder = handler_input.response_builder
        base_url = self.services.settings.public_url
        following = None
        if base_url:
            following = sleep_sounds.next_stream(
                base_url, request.token, request.offset_in_milliseconds or 0
            )
        if following is None:
            logger.info("Sleep timer done for %s: nothing more enqueued", request.token)
            return builder.response
        builder.add_directive(play_directive(following, PlayBehavior.ENQUEUE))
        return builder.response


class PlaybackEventHandler(ServiceHandler):
    """Started, stopped, finished: nothing to say (AudioPlayer requests may not speak)."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return any(is_request_type(name)(handler_input) for name in PLAYBACK_EVENTS)

    def handle(self, handler_input: HandlerInput) -> Response:
        request = handler_input.request_envelope.request
        logger.info("%s for %s", request.object_type, getattr(request, "token", None))
        return handler_input.response_builder.response


class PlaybackFailedHandler(ServiceHandler):
    """The device could not play the stream: log why (URL unreachable, not HTTPS, format)."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("AudioPlayer.PlaybackFailed")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        request = handler_input.request_envelope.request
        error = getattr(request, "error", None)
        logger.error(
            "Sleep sound %s failed to play: %s %s",
            getattr(request, "token", None),
            getattr(error, "object_type", None),
            getattr(error, "message", None),
        )
        return handler_input.response_builder.response

"""Requests Alexa sends besides intents: errors, name-free discovery, and device events.

None of these may speak (or needs the listener's story); each is acknowledged so it never reaches
the exception handler's apology and its ERROR traceback. Real AudioPlayer playback, when the skill
plays sounds, is handled before these by its own handlers.
"""

from __future__ import annotations

import logging

from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import get_request_type, is_request_type
from ask_sdk_model import Response
from ask_sdk_model.canfulfill import (
    CanFulfillIntent,
    CanFulfillIntentValues,
    CanFulfillSlot,
    CanFulfillSlotValues,
    CanUnderstandSlotValues,
)
from ask_sdk_model.slu.entityresolution import StatusCode

from skill import intents
from skill.handlers.base import ServiceHandler

logger = logging.getLogger(__name__)

#: Intents a "can you fulfil this?" query is answered YES for: asking for stories is our job.
STORY_INTENTS = frozenset({intents.TELL_STORY, intents.NEW_STORY, intents.LIST_TOPICS})
_LOGGED_TEXT = 200


class ExceptionEncounteredHandler(ServiceHandler):
    """Alexa reports that one of our responses was invalid: log it; nothing may be spoken."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("System.ExceptionEncountered")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        request = handler_input.request_envelope.request
        error = getattr(request, "error", None)
        cause = getattr(request, "cause", None)
        logger.warning(
            "Alexa reported an error with our response: %s %s (cause request %s)",
            getattr(getattr(error, "object_type", None), "value", None),
            str(getattr(error, "message", None))[:_LOGGED_TEXT],
            getattr(cause, "request_id", None),
        )
        return handler_input.response_builder.response


class CanFulfillIntentRequestHandler(ServiceHandler):
    """Name-free interaction: YES for story requests (any keyword: one we lack is queued)."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("CanFulfillIntentRequest")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        intent = getattr(handler_input.request_envelope.request, "intent", None)
        name = getattr(intent, "name", None)
        builder = handler_input.response_builder
        if name not in STORY_INTENTS:
            builder.set_can_fulfill_intent(CanFulfillIntent(can_fulfill=CanFulfillIntentValues.NO))
            return builder.response
        slots = {
            slot_name: _slot_answer(slot)
            for slot_name, slot in (getattr(intent, "slots", None) or {}).items()
            if slot is not None and slot.value
        }
        builder.set_can_fulfill_intent(
            CanFulfillIntent(can_fulfill=CanFulfillIntentValues.YES, slots=slots)
        )
        return builder.response


def _slot_answer(slot: object) -> CanFulfillSlot:
    """YES when the value resolved to a catalogue keyword, MAYBE otherwise; always fulfillable."""
    understood = CanUnderstandSlotValues.MAYBE
    resolutions = getattr(getattr(slot, "resolutions", None), "resolutions_per_authority", None)
    for authority in resolutions or []:
        if authority.status and authority.status.code == StatusCode.ER_SUCCESS_MATCH:
            understood = CanUnderstandSlotValues.YES
    return CanFulfillSlot(can_understand=understood, can_fulfill=CanFulfillSlotValues.YES)


class _Acknowledge(ServiceHandler):
    """An empty response: the event needs no answer, and none of these may speak."""

    def handle(self, handler_input: HandlerInput) -> Response:
        logger.info("acknowledged %s", get_request_type(handler_input))
        return handler_input.response_builder.response


class AudioPlayerEventHandler(_Acknowledge):
    """AudioPlayer.PlaybackStarted/Finished/Stopped/NearlyFinished/Failed."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return get_request_type(handler_input).startswith("AudioPlayer.")


class PlaybackControllerEventHandler(_Acknowledge):
    """Hardware play/pause/next/previous buttons."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return get_request_type(handler_input).startswith("PlaybackController.")


class AplUserEventHandler(_Acknowledge):
    """A touch on the story screen (the APL document sends no commands that need answers)."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("Alexa.Presentation.APL.UserEvent")(handler_input)


class ConnectionsResponseHandler(_Acknowledge):
    """The answer to a Connections.SendRequest (purchases, reminders) we did not start."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("Connections.Response")(handler_input)

"""The one exception handler: a kind apology out loud, the full story in the logs."""

from __future__ import annotations

import json
import logging

from ask_sdk_core.dispatch_components import AbstractExceptionHandler
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_model import Response

from skill.i18n import translator_for
from skill.interceptors import request_context
from skill.services import TRANSLATOR_KEY, SkillServices
from skill.ssml import escape

logger = logging.getLogger(__name__)


class CatchAllExceptionHandler(AbstractExceptionHandler):
    """Any failure (database down, a bug) becomes a spoken apology; state is not saved half-done."""

    def can_handle(self, handler_input: HandlerInput, exception: Exception) -> bool:
        return True

    def handle(self, handler_input: HandlerInput, exception: Exception) -> Response:
        try:
            SkillServices.abandon_turn(handler_input)
        except Exception:  # a broken connection cannot be rolled back; it is discarded anyway
            logger.warning("Could not roll back the failed turn", exc_info=True)
        try:
            context = request_context(handler_input)
        except Exception:  # the envelope itself may be what is broken
            context = {}
        logger.error(
            "Unhandled %s while handling %s",
            type(exception).__name__,
            json.dumps(context),
            exc_info=exception,
        )
        # The translator is missing if the failure happened before the localisation interceptor.
        translate = handler_input.attributes_manager.request_attributes.get(TRANSLATOR_KEY)
        if translate is None:
            translate = translator_for(
                getattr(handler_input.request_envelope.request, "locale", None)
            )
        builder = handler_input.response_builder
        if context.get("request_type") == "SessionEndedRequest":
            return builder.response  # nothing may be spoken after the session ended
        return (
            builder.speak(escape(translate("error")))
            .ask(escape(translate("error_reprompt")))
            .response
        )

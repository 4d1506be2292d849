"""Session lifecycle: LaunchRequest and SessionEndedRequest."""

from __future__ import annotations

import logging

from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import is_request_type
from ask_sdk_model import Response

from skill.handlers.base import ServiceHandler
from skill.responses import respond

logger = logging.getLogger(__name__)


class LaunchRequestHandler(ServiceHandler):
    """Welcome, or offer to carry on with the story we were in the middle of."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("LaunchRequest")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.welcome())


class SessionEndedRequestHandler(ServiceHandler):
    """Nothing may be spoken here; log why the session ended (errors included)."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("SessionEndedRequest")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        request = handler_input.request_envelope.request
        error = getattr(request, "error", None)
        if error is not None:
            logger.error(
                "Session ended with error %s: %s (request %s)",
                getattr(error, "object_type", None),
                getattr(error, "message", None),
                request.request_id,
            )
        else:
            logger.info("Session ended: %s", getattr(request, "reason", None))
        return handler_input.response_builder.response

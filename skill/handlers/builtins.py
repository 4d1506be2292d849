"""Built-in intents: help, stop, cancel, fallback, navigate home."""

from __future__ import annotations

from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import is_intent_name, is_request_type
from ask_sdk_model import Response

from skill import intents
from skill.handlers.base import ServiceHandler
from skill.responses import respond


class HelpIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.HELP)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.help())


class StopIntentHandler(ServiceHandler):
    """Goodnight; the bookmark is kept so next time we can offer to carry on."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.STOP)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.goodbye())


class CancelIntentHandler(StopIntentHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.CANCEL)(handler_input)


class NavigateHomeIntentHandler(StopIntentHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.NAVIGATE_HOME)(handler_input)


class FallbackIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.FALLBACK)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.fallback())


class UnhandledIntentHandler(ServiceHandler):
    """Last resort for an intent this version does not know (e.g. a newer interaction model)."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("IntentRequest")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.fallback())

"""Moving through a story: yes/no, next, repeat, start over, pause, resume."""

from __future__ import annotations

from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import is_intent_name
from ask_sdk_model import Response

from skill import intents
from skill.handlers.base import ServiceHandler
from skill.responses import respond


class YesIntentHandler(ServiceHandler):
    """Answers whatever we last asked (carry on? go on? another story?)."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.YES)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.yes())


class NoIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.NO)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.no())


class NextIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.NEXT)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.go_on())


class RepeatIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.REPEAT)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.repeat())


class StartOverIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.START_OVER)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.start_over())


class PauseIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.PAUSE)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.pause())


class ResumeIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.RESUME)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.resume())

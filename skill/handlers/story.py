"""Asking for stories: TellStoryIntent, NewStoryIntent, ListTopicsIntent."""

from __future__ import annotations

import logging

from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import is_intent_name
from ask_sdk_model import Response
from ask_sdk_model.services.directive import Header, SendDirectiveRequest, SpeakDirective

from skill import intents
from skill.handlers.base import ServiceHandler, slot_choice, slot_number, spoken_keywords
from skill.responses import respond
from skill.ssml import escape

logger = logging.getLogger(__name__)


class TellStoryIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.TELL_STORY)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        spoken = spoken_keywords(handler_input, intents.KEYWORD_SLOT, intents.SECOND_KEYWORD_SLOT)
        length = slot_choice(handler_input, intents.LENGTH_SLOT)
        count = slot_number(handler_input, intents.COUNT_SLOT)
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.tell(spoken, length=length, count=count))


class NewStoryIntentHandler(ServiceHandler):
    """Live generation when a model is configured, otherwise an honest "ready soon" + queue."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.NEW_STORY)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        spoken = spoken_keywords(handler_input, intents.KEYWORD_SLOT)
        live = self.services.live_enabled
        with self.services.conversation(handler_input) as talk:
            reply = talk.new_story(
                spoken,
                generate=self.services.generate_live if live else None,
                announce=lambda text: send_progressive_response(handler_input, text),
            )
            return respond(handler_input, reply)


def send_progressive_response(handler_input: HandlerInput, text: str) -> None:
    """Say "let me think…" while the model writes; failure only costs the courtesy, not the turn."""
    factory = handler_input.service_client_factory
    system = handler_input.request_envelope.context.system
    if factory is None or not (system.api_endpoint and system.api_access_token):
        # Simulators and some test envelopes carry no apiEndpoint/apiAccessToken.
        logger.info("No Alexa API endpoint in this request; skipping progressive response")
        return
    request_id = handler_input.request_envelope.request.request_id
    try:
        factory.get_directive_service().enqueue(
            SendDirectiveRequest(
                header=Header(request_id=request_id),
                directive=SpeakDirective(speech=f"<speak>{escape(text)}</speak>"),
            )
        )
    except Exception:
        logger.warning("Progressive response failed for request %s", request_id, exc_info=True)


class ListTopicsIntentHandler(ServiceHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(intents.LIST_TOPICS)(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        with self.services.conversation(handler_input) as talk:
            return respond(handler_input, talk.list_topics())

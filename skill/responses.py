"""Turns a conversation Reply into an ASK response: speech, reprompt, card, APL when supported."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import get_supported_interfaces
from ask_sdk_model import Response
from ask_sdk_model.dialog import ElicitSlotDirective
from ask_sdk_model.interfaces.audioplayer import (
    AudioItem,
    AudioItemMetadata,
    PlayBehavior,
    PlayDirective,
)
from ask_sdk_model.interfaces.audioplayer import Stream as AudioStream
from ask_sdk_model.ui import SimpleCard

from skill import sleep_sounds
from skill.conversation import Reply
from skill.ssml import escape

APL_TOKEN = "bedtimeStory"


@functools.cache
def _apl_document() -> dict[str, Any]:
    return json.loads((resources.files("skill") / "apl" / "story.json").read_text("utf-8"))


def _render_document(**fields: Any) -> Any:
    """APL's RenderDocument, imported on first use: its package is 74 modules (~15 ms of every
    cold start) that only a device with a screen needs."""
    from ask_sdk_model.interfaces.alexa.presentation.apl import RenderDocumentDirective

    return RenderDocumentDirective(token=APL_TOKEN, document=_apl_document(), **fields)


def supports_apl(handler_input: HandlerInput) -> bool:
    """True only when the device reports Alexa.Presentation.APL in supportedInterfaces."""
    try:
        interfaces = get_supported_interfaces(handler_input)
    except (AttributeError, TypeError):
        return False
    return interfaces is not None and interfaces.alexa_presentation_apl is not None


def respond(handler_input: HandlerInput, reply: Reply) -> Response:
    builder = handler_input.response_builder
    builder.speak(reply.speech.ssml())
    if reply.reprompt:
        builder.ask(escape(reply.reprompt))
    if reply.card_title and reply.card_text:
        builder.set_card(SimpleCard(title=reply.card_title, content=reply.card_text))
    if reply.display is not None and supports_apl(handler_input):
        display = reply.display
        builder.add_directive(
            _render_document(
                datasources={
                    "story": {
                        "title": display.title,
                        "paragraphs": display.paragraphs,
                        "progress": f"{display.part} / {display.parts}"
                        if display.parts > 1
                        else "",
                    }
                },
            )
        )
    if reply.audio is not None:
        builder.add_directive(play_directive(reply.audio, PlayBehavior.REPLACE_ALL))
    if reply.elicit_slot:
        intent = getattr(handler_input.request_envelope.request, "intent", None)
        builder.add_directive(
            ElicitSlotDirective(updated_intent=intent, slot_to_elicit=reply.elicit_slot)
        )
    if reply.end_session or (not reply.reprompt and not reply.elicit_slot):
        builder.set_should_end_session(True)
    return builder.response


def play_directive(stream: sleep_sounds.Stream, behavior: PlayBehavior) -> PlayDirective:
    """AudioPlayer.Play of a sleep sound (REPLACE_ALL to start, ENQUEUE for the next loop)."""
    return PlayDirective(
        play_behavior=behavior,
        audio_item=AudioItem(
            stream=AudioStream(
                token=stream.token,
                url=stream.url,
                offset_in_milliseconds=stream.offset_ms,
                expected_previous_token=stream.previous_token,
            ),
            metadata=AudioItemMetadata(title="Bedtime Stories"),
        ),
    )

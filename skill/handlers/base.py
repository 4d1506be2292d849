"""Shared plumbing for handlers: injected services and slot reading."""

from __future__ import annotations

from ask_sdk_core.dispatch_components import AbstractRequestHandler
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import get_slot
from ask_sdk_model.slu.entityresolution import StatusCode

from skill.conversation import SpokenKeyword
from skill.services import SkillServices

#: What a listener said in a slot is said back at most this long: a keyword is a few words, and
#: an uncapped echo could push a response past Alexa's 24 KB limit.
MAX_SLOT_CHARS = 60


def _capped(text: str) -> str:
    """At most MAX_SLOT_CHARS, cut at a word boundary when there is one."""
    text = " ".join(text.split())
    if len(text) <= MAX_SLOT_CHARS:
        return text
    cut = text[:MAX_SLOT_CHARS]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


class ServiceHandler(AbstractRequestHandler):
    """A request handler that was given the process's services at build time."""

    def __init__(self, services: SkillServices) -> None:
        self.services = services


def spoken_keyword(handler_input: HandlerInput, slot_name: str) -> SpokenKeyword | None:
    """The slot's words plus the canonical value when entity resolution matched."""
    try:
        slot = get_slot(handler_input, slot_name)
    except (TypeError, AttributeError):
        return None
    if slot is None or not (slot.value or "").strip():
        return None
    canonical = None
    resolutions = slot.resolutions.resolutions_per_authority if slot.resolutions else None
    for authority in resolutions or []:
        matched = authority.status and authority.status.code == StatusCode.ER_SUCCESS_MATCH
        if matched and authority.values:
            value = authority.values[0].value
            canonical = value.name or value.id
            break
    return SpokenKeyword(
        said=_capped(slot.value), canonical=_capped(canonical) if canonical else None
    )


def spoken_keywords(handler_input: HandlerInput, *slot_names: str) -> list[SpokenKeyword]:
    found = (spoken_keyword(handler_input, name) for name in slot_names)
    return [value for value in found if value is not None]

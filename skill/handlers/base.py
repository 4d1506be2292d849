"""Shared plumbing for handlers: injected services and slot reading."""

from __future__ import annotations

from ask_sdk_core.dispatch_components import AbstractRequestHandler
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import get_slot
from ask_sdk_model import Slot
from ask_sdk_model.slu.entityresolution import StatusCode
from ask_sdk_model.slu.entityresolution import Value as SlotValue

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


_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                 "seventeen", "eighteen", "nineteen", "twenty"]  # fmt: skip
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}


def number_value(words: str) -> int | None:
    """ "2", "two", "twenty five" → int; None when it is not a number."""
    words = words.strip().lower().replace("-", " ")
    if words.isdigit():
        return int(words)
    total = 0
    for word in words.split():
        if word in _NUMBER_WORDS:
            total += _NUMBER_WORDS.index(word)
        elif word in _TENS:
            total += _TENS[word]
        else:
            return None
    return total if words else None


class ServiceHandler(AbstractRequestHandler):
    """A request handler that was given the process's services at build time."""

    def __init__(self, services: SkillServices) -> None:
        self.services = services


def _filled_slot(handler_input: HandlerInput, slot_name: str) -> Slot | None:
    """The slot when the listener said something in it (None for a missing or empty slot)."""
    try:
        slot = get_slot(handler_input, slot_name)
    except (TypeError, AttributeError):
        return None
    if slot is None or not (slot.value or "").strip():
        return None
    return slot


def _resolved_value(slot: Slot) -> SlotValue | None:
    """The first value entity resolution matched (synonyms resolved), if any."""
    resolutions = slot.resolutions.resolutions_per_authority if slot.resolutions else None
    for authority in resolutions or []:
        matched = authority.status and authority.status.code == StatusCode.ER_SUCCESS_MATCH
        if matched and authority.values:
            return authority.values[0].value
    return None


def spoken_keyword(handler_input: HandlerInput, slot_name: str) -> SpokenKeyword | None:
    """The slot's words plus the canonical value when entity resolution matched."""
    slot = _filled_slot(handler_input, slot_name)
    if slot is None:
        return None
    value = _resolved_value(slot)
    canonical = (value.name or value.id) if value is not None else None
    return SpokenKeyword(
        said=_capped(slot.value), canonical=_capped(canonical) if canonical else None
    )


def spoken_keywords(handler_input: HandlerInput, *slot_names: str) -> list[SpokenKeyword]:
    found = (spoken_keyword(handler_input, name) for name in slot_names)
    return [value for value in found if value is not None]


def slot_choice(handler_input: HandlerInput, slot_name: str) -> str | None:
    """A custom slot's value id ("short", "sleepy_voice"): the resolved id, else the words heard
    in id form, so a simulator without entity resolution still works."""
    slot = _filled_slot(handler_input, slot_name)
    if slot is None:
        return None
    value = _resolved_value(slot)
    if value is not None and value.id:
        return str(value.id)
    return "_".join(slot.value.lower().split())


def slot_number(handler_input: HandlerInput, slot_name: str) -> int | None:
    """An AMAZON.NUMBER slot as an int ("2"; simulators may send "two"); None when not a number."""
    try:
        slot = get_slot(handler_input, slot_name)
    except (TypeError, AttributeError):
        return None
    return number_value(slot.value or "") if slot is not None else None


def slot_text(handler_input: HandlerInput, slot_name: str) -> str | None:
    """A slot's raw value (AMAZON.DURATION's "PT20M"), or None."""
    try:
        slot = get_slot(handler_input, slot_name)
    except (TypeError, AttributeError):
        return None
    return (slot.value or "").strip() or None if slot is not None else None

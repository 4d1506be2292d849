"""Request/response interceptors: localisation, logging, and listener state load/save.

Handlers only read ``request_attributes["_"]`` (translator) and ``request_attributes["state"]``
(ListenerState). The turn's database session is opened here with one read of the listener
(attributes, last play, history size) and closed here with at most one write transaction; the
exception handler abandons it when the turn fails.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ask_sdk_core.dispatch_components import (
    AbstractRequestInterceptor,
    AbstractResponseInterceptor,
)
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import get_intent_name, get_locale, get_request_type
from ask_sdk_model import Response

from skill.conversation import ListenerState
from skill.i18n import translator_for
from skill.persistence import listener_key
from skill.services import STATE_KEY, TRANSLATOR_KEY, TURN_KEY, SkillServices, Turn

logger = logging.getLogger(__name__)

_SNAPSHOT_KEY = "_persistent_snapshot"
_STARTED_KEY = "_started"


def request_context(handler_input: HandlerInput) -> dict[str, str | None]:
    """Small, privacy-safe description of the request for log lines (no user id, no speech)."""
    envelope = handler_input.request_envelope
    request = envelope.request
    intent = None
    if get_request_type(handler_input) == "IntentRequest":
        intent = get_intent_name(handler_input)
    return {
        "request_type": get_request_type(handler_input),
        "intent": intent,
        "request_id": getattr(request, "request_id", None),
        "locale": getattr(request, "locale", None),
        "session_id": envelope.session.session_id if envelope.session else None,
    }


class LocalizationInterceptor(AbstractRequestInterceptor):
    """Puts the translator for the request's locale in request_attributes["_"]."""

    def process(self, handler_input: HandlerInput) -> None:
        handler_input.attributes_manager.request_attributes[TRANSLATOR_KEY] = translator_for(
            get_locale(handler_input)
        )


class RequestLoggingInterceptor(AbstractRequestInterceptor):
    """Notes when the turn started; the response interceptor logs the turn in one line."""

    def process(self, handler_input: HandlerInput) -> None:
        handler_input.attributes_manager.request_attributes[_STARTED_KEY] = time.perf_counter()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("request %s", json.dumps(request_context(handler_input)))


class ResponseLoggingInterceptor(AbstractResponseInterceptor):
    """One INFO line per turn: what was asked, whether the session ends, how long it took."""

    def process(self, handler_input: HandlerInput, response: Response | None) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        started = handler_input.attributes_manager.request_attributes.get(_STARTED_KEY)
        context: dict[str, Any] = dict(request_context(handler_input))
        context["ends_session"] = response.should_end_session if response is not None else None
        if started is not None:
            context["ms"] = round((time.perf_counter() - started) * 1000, 1)
        logger.info("turn %s", json.dumps(context))


class ListenerStateLoadInterceptor(AbstractRequestInterceptor):
    """Opens the request's turn (one read of the listener) and builds its ListenerState."""

    def __init__(self, services: SkillServices) -> None:
        self.services = services

    def process(self, handler_input: HandlerInput) -> None:
        if get_request_type(handler_input) == "SessionEndedRequest":
            return  # nothing is said or remembered after the session ended
        manager = handler_input.attributes_manager
        key = listener_key(handler_input.request_envelope)
        turn = self.services.open_turn(handler_input, key)
        persistent = turn.listener.attributes if turn.listener is not None else {}
        in_session = handler_input.request_envelope.session is not None
        session = (manager.session_attributes or {}) if in_session else {}
        state = ListenerState.from_attributes(key, persistent, session)
        manager.request_attributes[STATE_KEY] = state
        manager.request_attributes[_SNAPSHOT_KEY] = state.persistent_attributes()


class ListenerStateSaveInterceptor(AbstractResponseInterceptor):
    """Writes the state back: session attributes always, the database once and only on change."""

    def __init__(self, services: SkillServices) -> None:
        self.services = services

    def process(self, handler_input: HandlerInput, response: Response | None) -> None:
        manager = handler_input.attributes_manager
        state: ListenerState | None = manager.request_attributes.get(STATE_KEY)
        if state is None:
            self.services.finish_turn(handler_input, None)
            return
        if handler_input.request_envelope.session is not None:
            manager.session_attributes = state.session_attributes()
        persistent = state.persistent_attributes()
        turn: Turn | None = manager.request_attributes.get(TURN_KEY)
        merged = None
        listener = turn.listener if turn is not None else None
        if listener is not None and persistent != manager.request_attributes.get(_SNAPSHOT_KEY):
            # Keep keys this version does not know about (written by a newer one): lose no data.
            merged = {
                k: v
                for k, v in listener.attributes.items()
                if k not in ListenerState.PERSISTENT_KEYS
            }
            merged.update(persistent)
        self.services.finish_turn(handler_input, merged)

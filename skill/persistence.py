"""The ASK SDK persistence extension point implemented on our SQL store.

Raw Alexa user ids are never stored: the key is ``db.store.hash_listener_id(user_id)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ask_sdk_core.attributes_manager import AbstractPersistenceAdapter
from ask_sdk_core.exceptions import PersistenceException
from ask_sdk_model import RequestEnvelope
from sqlalchemy.orm import Session

from db import store

logger = logging.getLogger(__name__)


def listener_key(request_envelope: RequestEnvelope) -> str | None:
    """Hashed id of the Alexa user who sent this request (None when the request has no user)."""
    system = request_envelope.context.system if request_envelope.context else None
    user = system.user if system is not None else None
    if user is None or not user.user_id:
        session = request_envelope.session
        user = session.user if session is not None else None
    if user is None or not user.user_id:
        return None
    return store.hash_listener_id(user.user_id)


class SqlPersistenceAdapter(AbstractPersistenceAdapter):
    """get/save/delete listener attributes through db.store, one short transaction each."""

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory

    def _key(self, request_envelope: RequestEnvelope) -> str:
        key = listener_key(request_envelope)
        if key is None:
            raise PersistenceException("The request has no user id to store attributes under")
        return key

    def get_attributes(self, request_envelope: RequestEnvelope) -> dict[str, Any]:
        key = self._key(request_envelope)
        with self._session_factory() as session:
            return dict(store.load_listener_attributes(session, key) or {})

    def save_attributes(
        self, request_envelope: RequestEnvelope, attributes: dict[str, Any]
    ) -> None:
        key = self._key(request_envelope)
        with self._session_factory() as session:
            store.save_listener_attributes(session, key, attributes)
            session.commit()

    def delete_attributes(self, request_envelope: RequestEnvelope) -> None:
        key = self._key(request_envelope)
        with self._session_factory() as session:
            store.delete_listener(session, key)
            session.commit()

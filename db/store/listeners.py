"""Listeners: hashed ids, persistent attributes and play history."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from sqlalchemy import (
    delete,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import (
    Listener,
    PlayHistory,
    _utcnow,
)

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def hash_listener_id(alexa_user_id: str) -> str:
    """sha256 hex of a raw user id: the only form in which listeners are stored."""
    return hashlib.sha256(alexa_user_id.encode("utf-8")).hexdigest()


def _listener_key(listener_id: str) -> str:
    return listener_id if _HEX64.match(listener_id) else hash_listener_id(listener_id)


def _ensure_listener(session: Session, key: str) -> Listener:
    listener = session.get(Listener, key)
    if listener is not None:
        return listener
    try:
        with session.begin_nested():
            listener = Listener(key=key, attributes={})
            session.add(listener)
        return listener
    except IntegrityError:
        return session.get_one(Listener, key, populate_existing=True)


def record_play(session: Session, listener_id: str, story_id: int, finished: bool = False) -> None:
    """Remember that a listener heard a story; a later finished=True completes the same play."""
    key = _listener_key(listener_id)
    _ensure_listener(session, key)
    if finished:
        last = session.scalars(
            select(PlayHistory)
            .where(PlayHistory.listener_key == key)
            .order_by(PlayHistory.played_at.desc(), PlayHistory.id.desc())
            .limit(1)
        ).first()
        if last is not None and last.story_id == story_id and not last.finished:
            last.finished = True
            session.flush()
            return
    session.add(PlayHistory(listener_key=key, story_id=story_id, finished=finished))
    session.flush()


def load_listener_attributes(session: Session, listener_key: str) -> dict[str, Any]:
    """The listener's persistent attributes ({} for a new listener); a copy, safe to mutate."""
    listener = session.get(Listener, _listener_key(listener_key))
    return dict(listener.attributes or {}) if listener is not None else {}


def save_listener_attributes(session: Session, listener_key: str, attrs: dict[str, Any]) -> None:
    """Replace the listener's persistent attributes."""
    listener = _ensure_listener(session, _listener_key(listener_key))
    listener.attributes = dict(attrs)  # a new object, so the JSON change is detected
    listener.updated_at = _utcnow()
    session.flush()


def delete_listener(session: Session, listener_key: str) -> None:
    """Forget a listener completely: attributes and play history."""
    key = _listener_key(listener_key)
    session.execute(delete(PlayHistory).where(PlayHistory.listener_key == key))
    session.execute(delete(Listener).where(Listener.key == key))
    session.expire_all()

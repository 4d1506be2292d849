"""Per-device preferences: a small JSON object per hashed Alexa device id."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import DevicePreference, _utcnow


def hash_device_id(device_id: str) -> str:
    """sha256 hex of Alexa's device id: the only form in which devices are stored."""
    return hashlib.sha256(device_id.encode("utf-8")).hexdigest()


def load_device_preferences(session: Session, device_id: str) -> dict[str, Any]:
    """The device's preferences ({} when none were set); a copy, safe to mutate."""
    row = session.get(DevicePreference, hash_device_id(device_id))
    return dict(row.preferences or {}) if row is not None else {}


def save_device_preferences(session: Session, device_id: str, prefs: dict[str, Any]) -> None:
    """Replace the device's preferences (flushes; the caller commits)."""
    key = hash_device_id(device_id)
    row = session.get(DevicePreference, key)
    if row is None:
        try:
            with session.begin_nested():
                session.add(DevicePreference(key=key, preferences=dict(prefs)))
            return
        except IntegrityError:  # another request created it first: update that one
            row = session.get_one(DevicePreference, key, populate_existing=True)
    row.preferences = dict(prefs)
    row.updated_at = _utcnow()
    session.flush()

"""What a grown-up can switch off on one device: the sleepy voice, the goodnight ritual, sounds.

Kept per device (a bedroom speaker and a kitchen screen differ), keyed by a sha256 of Alexa's
device id, in the listener's persistent attributes: the turn reads those once anyway, so the
switches cost no query of their own. Everything is on until someone says "turn off …".
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any

#: Slot ids of PREFERENCE_FEATURE (skill/interaction_model/base.json) -> Preferences field.
FEATURES = {
    "sleepy_voice": "sleepy_voice",
    "goodnight": "goodnight",
    "sleep_sounds": "sleep_sounds",
}


@dataclass(frozen=True)
class Preferences:
    """Per-device switches; all on by default."""

    sleepy_voice: bool = True  # rate and volume fall across the story, longer pauses
    goodnight: bool = True  # the calm closing ritual after the last story
    sleep_sounds: bool = True  # the offer of rain or the ocean after goodnight

    @classmethod
    def from_dict(cls, data: Any) -> Preferences:
        """Unknown keys and non-boolean values are ignored (written by another version)."""
        if not isinstance(data, dict):
            return cls()
        known = {k: v for k, v in data.items() if k in FEATURES.values() and isinstance(v, bool)}
        return cls(**known)

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)

    def switched(self, feature: str, on: bool) -> Preferences:
        return replace(self, **{FEATURES[feature]: on})


def device_key(device_id: str) -> str:
    """sha256 hex of Alexa's device id: raw device ids are never stored."""
    return hashlib.sha256(device_id.encode("utf-8")).hexdigest()


def device_preferences_from(data: Any) -> dict[str, dict[str, bool]]:
    """The stored per-device switches; anything malformed (another version's data) is dropped."""
    if not isinstance(data, dict):
        return {}
    return {
        str(key): Preferences.from_dict(value).to_dict()
        for key, value in data.items()
        if isinstance(value, dict)
    }

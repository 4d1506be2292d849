"""All configuration in one place, read from ``BEDTIME_*`` environment variables.

Every process (skill, CLI, batch job) builds one :class:`Settings` with :meth:`Settings.from_env`,
so a deployment is configured the same way whichever entry point runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "bedtime-stories"


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use true or false.")


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not a number.") from exc


def default_data_dir() -> Path:
    """Where the embedded SQLite database lives when nothing else is configured."""
    override = os.environ.get("BEDTIME_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'bedtime.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    """Process-wide settings. Defaults suit a parent's laptop: SQLite, verification on."""

    database_url: str = field(default_factory=default_database_url)
    # Alexa skill id (amzn1.ask.skill.…); when set, requests for other skills are refused.
    skill_id: str | None = None
    # Signature/timestamp verification of Alexa requests. Only turn off for local simulators.
    verify_requests: bool = True
    default_locale: str = "en-US"
    # Directory of a light model for live "make up a new story" generation; None disables it.
    live_model_path: str | None = None
    live_deadline_seconds: float = 6.0
    # Stories from the generator are served only after a human approves them when True.
    require_human_review: bool = False
    log_level: str = "INFO"

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("BEDTIME_DATABASE_URL") or default_database_url(),
            skill_id=os.environ.get("BEDTIME_SKILL_ID") or None,
            verify_requests=_env_bool("BEDTIME_VERIFY_REQUESTS", True),
            default_locale=os.environ.get("BEDTIME_DEFAULT_LOCALE") or "en-US",
            live_model_path=os.environ.get("BEDTIME_LIVE_MODEL") or None,
            live_deadline_seconds=_env_float("BEDTIME_LIVE_DEADLINE_SECONDS", 6.0),
            require_human_review=_env_bool("BEDTIME_REQUIRE_HUMAN_REVIEW", False),
            log_level=(os.environ.get("BEDTIME_LOG_LEVEL") or "INFO").upper(),
        )

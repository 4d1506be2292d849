"""Every ``BEDTIME_*`` environment variable, read here and nowhere else.

The skill, the story store, the generator and the command line all stand on this module; it
imports nothing of ours. Each variable has one reader below (:data:`VARIABLES` lists them), and
every process (skill, CLI, batch job) builds one :class:`Settings` with :meth:`Settings.from_env`,
so a deployment is configured the same way whichever entry point runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "bedtime-stories"

#: What each variable does; the README's configuration table says the same for operators.
VARIABLES = {
    "BEDTIME_DATABASE_URL": "SQLAlchemy URL of the story store (default: a SQLite file)",
    "BEDTIME_DATA_DIR": "folder of the default SQLite file (default: the user data folder)",
    "BEDTIME_SKILL_ID": "Alexa skill id; requests for other skills are refused",
    "BEDTIME_VERIFY_REQUESTS": "verify Alexa request signatures and timestamps (true/false)",
    "BEDTIME_DEFAULT_LOCALE": "locale of the stories told when a listener's has none",
    "BEDTIME_LIVE_MODEL": "folder of the light model that makes up new stories live",
    "BEDTIME_LIVE_DEADLINE_SECONDS": "how long a live story may take before a stored one is told",
    "BEDTIME_REQUIRE_HUMAN_REVIEW": "serve generated stories only after a person approves them",
    "BEDTIME_AUTO_APPROVE_LIVE": "a live story that passed the gate joins the catalogue approved",
    "BEDTIME_LOG_LEVEL": "logging level (INFO, DEBUG, ...)",
    "BEDTIME_PLAY_HISTORY_LIMIT": "plays remembered per listener (older ones are forgotten)",
    "BEDTIME_KEYWORD_REFRESH_SECONDS": "how often a worker checks the keyword table for changes",
    "BEDTIME_ENDPOINT_URI": "HTTPS URL (or Lambda ARN) put in skill.json by skill-package build",
    "BEDTIME_DB_TIMEOUT_SECONDS": "the skill's database connect/read/write/pool wait limit",
    "BEDTIME_LEASE_SECONDS": "a generation worker's claim lapses this long after its last renewal",
    "BEDTIME_WEB_WORKERS": "gunicorn worker processes of `bedtime serve` (default: by CPU count)",
    "BEDTIME_WEB_THREADS": "threads per gunicorn worker of `bedtime serve`",
    "BEDTIME_SOUNDS_DIR": "folder of the sleep sounds (default: <data dir>/sounds)",
    "BEDTIME_PUBLIC_URL": "HTTPS base URL Alexa streams sleep sounds from (default: endpoint's)",
    "BEDTIME_CONSOLE": "serve the operator's console (/console) and REST API (/api/v1)",
    "BEDTIME_SECRET_KEY": "signs console sessions and CSRF tokens; required with the console",
    "BEDTIME_CONSOLE_SECURE_COOKIES": "console cookies only over HTTPS (false only for plain LAN)",
    "BEDTIME_MODELS_DIR": "where models uploaded through the API are kept",
    "BEDTIME_MODEL_UPLOAD_MAX_MB": "largest model archive the API accepts, in MiB",
}


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def env_text(name: str) -> str | None:
    """The variable's value, or None when it is unset or blank: the one way we read the env."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not one of our settings; add it to settings.VARIABLES")
    raw = os.environ.get(name)
    return raw if raw is not None and raw.strip() != "" else None


def env_bool(name: str, default: bool) -> bool:
    raw = env_text(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use true or false.")


def env_float(name: str, default: float) -> float:
    raw = env_text(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not a number.") from exc


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = env_text(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number.") from exc
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} must be at least {minimum}.")
    return value


def lease_seconds() -> float:
    """BEDTIME_LEASE_SECONDS (default 300): how long a dead generation worker blocks its work."""
    value = env_float("BEDTIME_LEASE_SECONDS", 300.0)
    if value < 1:
        raise ConfigurationError(f"BEDTIME_LEASE_SECONDS={value} is too short; use >= 1.")
    return value


def default_data_dir() -> Path:
    """Where the embedded SQLite database lives when nothing else is configured."""
    override = env_text("BEDTIME_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'bedtime.sqlite3'}"


def database_url() -> str:
    """BEDTIME_DATABASE_URL, else the local SQLite file; needs no other setting to be valid."""
    return env_text("BEDTIME_DATABASE_URL") or default_database_url()


def default_sounds_dir() -> Path:
    """Where ``bedtime sounds build`` writes the sleep sounds and the web app serves them."""
    override = env_text("BEDTIME_SOUNDS_DIR")
    return Path(override).expanduser() if override else default_data_dir() / "sounds"


def public_url() -> str | None:
    """BEDTIME_PUBLIC_URL, else the HTTPS endpoint without its /alexa path (None for a Lambda)."""
    explicit = env_text("BEDTIME_PUBLIC_URL")
    if explicit:
        return explicit.rstrip("/")
    endpoint = endpoint_uri()
    if endpoint and endpoint.startswith("https://"):
        return endpoint.rstrip("/").removesuffix("/alexa")
    return None


def default_models_dir() -> str:
    """Uploaded models live beside the default SQLite file unless BEDTIME_MODELS_DIR says."""
    return env_text("BEDTIME_MODELS_DIR") or str(default_data_dir() / "models")


def endpoint_uri() -> str | None:
    """BEDTIME_ENDPOINT_URI: where skill.json sends requests (None keeps its placeholder)."""
    return env_text("BEDTIME_ENDPOINT_URI")


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
    # A live story (after the safety gate) is told to the child who asked; it joins the shared
    # catalogue as pending for a person to approve, unless this is True.
    auto_approve_live: bool = False
    log_level: str = "INFO"
    # Plays remembered per listener for "a story you have not heard"; older ones are trimmed.
    play_history_limit: int = 1000
    # Keywords and synonyms are cached per worker; a change elsewhere is seen within this time.
    keyword_refresh_seconds: float = 2.0
    # Sleep sounds: where Alexa fetches them (None: not offered) and where their files are.
    public_url: str | None = None
    sounds_dir: Path = field(default_factory=default_sounds_dir)
    # The operator's console and REST API (console/): off unless asked for.
    console_enabled: bool = False
    secret_key: str | None = None
    console_secure_cookies: bool = True
    models_dir: str = field(default_factory=default_models_dir)
    model_upload_max_mb: float = 2048.0
    # Connect/read/write/pool-wait limit of the skill's database calls: a hung database becomes
    # an apology within Alexa's budget instead of a stalled worker.
    db_timeout_seconds: float = 1.0
    # A generation worker's claims (requests and plan sets) lapse this long after the last renewal.
    lease_seconds: float = 300.0
    # gunicorn sizing for `bedtime serve` (0 workers: by CPU count).
    web_workers: int = 0
    web_threads: int = 8

    def require_endpoint_ready(self) -> None:
        """A verifying endpoint must know its skill id, else it answers any skill's requests."""
        if self.verify_requests and not self.skill_id:
            raise ConfigurationError(
                "BEDTIME_SKILL_ID is not set: a public endpoint must know its skill id "
                "(amzn1.ask.skill....) so that it refuses requests meant for other skills. "
                "Set it, or use --no-verify / BEDTIME_VERIFY_REQUESTS=false for a local simulator."
            )

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=database_url(),
            skill_id=env_text("BEDTIME_SKILL_ID"),
            verify_requests=env_bool("BEDTIME_VERIFY_REQUESTS", True),
            default_locale=env_text("BEDTIME_DEFAULT_LOCALE") or "en-US",
            live_model_path=env_text("BEDTIME_LIVE_MODEL"),
            live_deadline_seconds=env_float("BEDTIME_LIVE_DEADLINE_SECONDS", 6.0),
            require_human_review=env_bool("BEDTIME_REQUIRE_HUMAN_REVIEW", False),
            auto_approve_live=env_bool("BEDTIME_AUTO_APPROVE_LIVE", False),
            log_level=(env_text("BEDTIME_LOG_LEVEL") or "INFO").upper(),
            play_history_limit=env_int("BEDTIME_PLAY_HISTORY_LIMIT", 1000, minimum=1),
            keyword_refresh_seconds=env_float("BEDTIME_KEYWORD_REFRESH_SECONDS", 2.0),
            db_timeout_seconds=env_float("BEDTIME_DB_TIMEOUT_SECONDS", 1.0),
            lease_seconds=lease_seconds(),
            web_workers=env_int("BEDTIME_WEB_WORKERS", 0),
            web_threads=env_int("BEDTIME_WEB_THREADS", 8, minimum=1),
            public_url=public_url(),
            console_enabled=env_bool("BEDTIME_CONSOLE", False),
            secret_key=env_text("BEDTIME_SECRET_KEY"),
            console_secure_cookies=env_bool("BEDTIME_CONSOLE_SECURE_COOKIES", True),
            models_dir=default_models_dir(),
            model_upload_max_mb=env_float("BEDTIME_MODEL_UPLOAD_MAX_MB", 2048.0),
        )


__all__ = [
    "APP_NAME",
    "VARIABLES",
    "ConfigurationError",
    "Settings",
    "database_url",
    "default_data_dir",
    "default_database_url",
    "default_models_dir",
    "default_sounds_dir",
    "endpoint_uri",
    "env_bool",
    "env_float",
    "env_int",
    "env_text",
    "lease_seconds",
    "public_url",
]

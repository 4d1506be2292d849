"""What handlers need at run time, built once per process: settings, database, live storyteller.

Handlers receive a :class:`SkillServices` at build time instead of reaching for globals, so tests
can build a skill on a temporary SQLite file and a fake storyteller.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ask_sdk_core.handler_input import HandlerInput
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from settings import Settings
from skill import sleep_sounds
from skill.conversation import Conversation, ListenerState

logger = logging.getLogger(__name__)

STATE_KEY = "state"
TRANSLATOR_KEY = "_"


class Storyteller(Protocol):
    """generator.live.LiveStoryteller's shape, as the skill uses it."""

    def tell(self, keywords: Sequence[str], timeout_s: float) -> Any: ...


@dataclass
class SkillServices:
    """Per-process dependencies of the handlers (tests pass a rolled-back session factory)."""

    settings: Settings
    engine: Engine
    session_factory: Callable[[], Session]
    rng: random.Random | None = None
    storyteller: Storyteller | None = None
    _storyteller_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _executor: ThreadPoolExecutor | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SkillServices:
        from db.engine import make_engine, session_factory

        engine = make_engine(settings.database_url)
        return cls(settings=settings, engine=engine, session_factory=session_factory(engine))

    @property
    def live_enabled(self) -> bool:
        """Live stories cannot be reviewed first, so human review switches them off."""
        configured = self.storyteller is not None or bool(self.settings.live_model_path)
        return configured and not self.settings.require_human_review

    def live_storyteller(self) -> Storyteller:
        """Loaded on first use only: importing generator.live is cheap, the model is not."""
        with self._storyteller_lock:
            if self.storyteller is None:
                from generator.live import LiveStoryteller  # lazy: only when configured

                self.storyteller = LiveStoryteller(
                    self.settings.live_model_path, self.settings.live_deadline_seconds
                )
            return self.storyteller

    def warm_up(self) -> None:
        """Start loading the live model now (in its own thread), not on the first request."""
        if not self.live_enabled:
            return
        try:
            self.live_storyteller()
        except Exception:
            logger.exception(
                "Live storyteller could not be started from %s", self.settings.live_model_path
            )

    def generate_live(self, keywords: Sequence[str]) -> Any | None:
        """Run the model in a worker thread; None when it misses the deadline or fails.

        The request thread never waits longer than the deadline (plus a little grace), so Alexa's
        8-second limit holds even if the storyteller ignores its own timeout.
        """
        deadline = self.settings.live_deadline_seconds
        try:
            teller = self.live_storyteller()
        except Exception:
            logger.exception(
                "Live storyteller could not be loaded from %s", self.settings.live_model_path
            )
            return None
        with self._storyteller_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="live-story")
        future = self._executor.submit(teller.tell, list(keywords), deadline)
        try:
            return future.result(timeout=deadline + 0.5)
        except FutureTimeout:
            logger.warning("Live story about %s missed the %.1fs deadline", keywords, deadline)
            return None
        except Exception:
            logger.exception("Live story about %s failed", keywords)
            return None

    @contextmanager
    def conversation(self, handler_input: HandlerInput) -> Iterator[Conversation]:
        """A Conversation for this turn in one DB transaction (committed when the turn succeeds)."""
        attributes = handler_input.attributes_manager.request_attributes
        state: ListenerState = attributes[STATE_KEY]
        locale = handler_input.request_envelope.request.locale or self.settings.default_locale
        with self.session_factory() as session:
            yield Conversation(
                session,
                state,
                attributes[TRANSLATOR_KEY],
                locale,
                rng=self.rng,
                fallback_locale=self.settings.default_locale,
                auto_approve_live=self.settings.auto_approve_live,
                sound_base_url=self.settings.public_url,
                sounds=self.sleep_sounds(),
                device_id=device_id(handler_input),
            )
            session.commit()

    def sleep_sounds(self) -> list[str]:
        """Sounds we can stream: a public URL is set and the file was built."""
        if not self.settings.public_url:
            return []
        return sleep_sounds.available(self.settings.sounds_dir)


def device_id(handler_input: HandlerInput) -> str | None:
    """Alexa's id of the device that sent the request (per-device preferences)."""
    context = handler_input.request_envelope.context
    system = context.system if context is not None else None
    device = system.device if system is not None else None
    return device.device_id if device is not None and device.device_id else None

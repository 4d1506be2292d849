"""What handlers need at run time, built once per process: settings, database, live storyteller.

Handlers receive a :class:`SkillServices` at build time instead of reaching for globals, so tests
can build a skill on a temporary SQLite file and a fake storyteller.

Each request is one :class:`Turn`: one connection and transaction (db/turn.py), opened by the
state interceptor, that reads the listener once, serves the handler's reads, and writes what
changed once at the end (see skill/interceptors.py); a turn that changed nothing commits nothing.
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
from functools import cached_property
from typing import Any, Protocol, cast

from ask_sdk_core.handler_input import HandlerInput
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from db import store
from db.store.keyword_cache import KeywordCache
from db.turn import TurnTransaction, bind_of
from settings import Settings
from skill import sleep_sounds
from skill.conversation import Conversation, ListenerState

logger = logging.getLogger(__name__)

STATE_KEY = "state"
TRANSLATOR_KEY = "_"
TURN_KEY = "_turn"


class Storyteller(Protocol):
    """generator.live.LiveStoryteller's shape, as the skill uses it."""

    def tell(self, keywords: Sequence[str], timeout_s: float) -> Any: ...


@dataclass
class Turn:
    """One request's database work: its transaction and the listener as read at the start."""

    transaction: TurnTransaction
    listener: store.ListenerTurn | None = None

    @property
    def connection(self) -> Connection:
        return self.transaction.connection

    @property
    def session(self) -> Session:
        """An ORM Session on the turn's connection, for the rarer paths (made on first use)."""
        return self.transaction.session

    def finish(self, persistent: dict[str, Any] | None, history_limit: int) -> None:
        """Write what the turn changed in one short transaction, commit once, close.

        ``persistent``: the listener's attributes as they should now be (None: unchanged).
        """
        transaction = self.transaction
        writes: list[Any] = []
        try:
            listener = self.listener
            if listener is not None and persistent is not None:
                listener.set_attributes(persistent)
            if listener is not None and listener.changed:
                dialect = transaction.connection.dialect.name
                batched = listener.writes(dialect, history_limit)
                if batched is None:  # a history trim reads first: written the long way
                    transaction.begin_writing()
                    listener.write(transaction.connection, history_limit)
                else:
                    writes = batched
        except BaseException:
            transaction.abandon()
            raise
        transaction.finish(writes)  # abandons the transaction itself if the writes fail
        if writes and listener is not None:
            listener.written(history_limit)

    def abandon(self) -> None:
        """The turn failed: nothing it did is kept."""
        self.transaction.abandon()


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
    keywords: KeywordCache | None = None

    def __post_init__(self) -> None:
        if self.keywords is None:
            self.keywords = KeywordCache(self.settings.keyword_refresh_seconds)

    @cached_property
    def _bind(self) -> Engine | Connection:
        """What the turns' connections come from: the factory's engine (a test's connection)."""
        return bind_of(self.session_factory)

    @classmethod
    def from_settings(cls, settings: Settings) -> SkillServices:
        from db.engine import make_engine, session_factory

        engine = make_engine(
            settings.database_url,
            timeout_s=settings.db_timeout_seconds,
            checkpoint_in_background=True,
        )
        if not settings.live_model_path:  # BEDTIME_LIVE_MODEL wins over the console's choice
            from dataclasses import replace

            from db.store.overview import chosen_live_model_path

            settings = replace(settings, live_model_path=chosen_live_model_path(engine))
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

    # ----------------------------------------------------------------- turns
    def open_turn(self, handler_input: HandlerInput, listener_key: str | None) -> Turn:
        """Start the request's turn: a session in its read phase and the listener, read once."""
        transaction = TurnTransaction(self._bind, self.session_factory)
        try:
            connection = transaction.connection
            listener = store.open_listener(connection, listener_key) if listener_key else None
        except BaseException:
            transaction.abandon()
            raise
        turn = Turn(transaction, listener)
        handler_input.attributes_manager.request_attributes[TURN_KEY] = turn
        return turn

    def finish_turn(self, handler_input: HandlerInput, persistent: dict[str, Any] | None) -> None:
        """Write and commit the turn (see :meth:`Turn.finish`); nothing if none was opened."""
        turn = handler_input.attributes_manager.request_attributes.pop(TURN_KEY, None)
        if turn is not None:
            cast(Turn, turn).finish(persistent, self.settings.play_history_limit)

    @staticmethod
    def abandon_turn(handler_input: HandlerInput) -> None:
        """Roll back and close the turn's session after a failure (nothing half-saved)."""
        turn = handler_input.attributes_manager.request_attributes.pop(TURN_KEY, None)
        if turn is not None:
            cast(Turn, turn).abandon()

    @contextmanager
    def conversation(self, handler_input: HandlerInput) -> Iterator[Conversation]:
        """A Conversation on this turn's session; the turn writes and commits at its end."""
        attributes = handler_input.attributes_manager.request_attributes
        state: ListenerState = attributes[STATE_KEY]
        turn: Turn | None = attributes.get(TURN_KEY)
        if turn is None:
            turn = self.open_turn(handler_input, None)
        locale = handler_input.request_envelope.request.locale or self.settings.default_locale
        opened = turn
        yield Conversation(
            lambda: opened.session,
            state,
            attributes[TRANSLATOR_KEY],
            locale,
            rng=self.rng,
            fallback_locale=self.settings.default_locale,
            auto_approve_live=self.settings.auto_approve_live,
            listener=turn.listener,
            keywords=self.keywords,
            connection=turn.connection,
            sound_base_url=self.settings.public_url,
            sounds=self.sleep_sounds(),
            device_id=device_id(handler_input),
        )

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

"""Live "make up a new story" generation for the skill, within a deadline.

The skill imports this module only when ``BEDTIME_LIVE_MODEL`` is set, and importing it stays
torch-free: the model loads in a background worker thread (once, then kept warm), so the skill's
first request is not blocked by ``import torch``. :meth:`LiveStoryteller.tell` submits a job to
that thread and waits at most ``timeout_s``; on timeout it returns None (the skill then falls back
to the catalogue) and the worker abandons the story at its own deadline, so a late story never
piles up behind the next request. Every story passes the same assembly checks and safety gate as
the batch job; anything not approved is returned as None too, never read to a child.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from generator.generation.assemble import APPROVED, GeneratedStory
from generator.generation.config import StoryConfig

logger = logging.getLogger(__name__)

_STOP = object()


class LiveStoryteller:
    """A warm model in a worker thread that writes ~150-word stories on demand."""

    def __init__(
        self,
        model_path: str | Path,
        deadline_s: float = 6.0,
        config: StoryConfig | None = None,
        threads: int | None = 1,
        engine: str = "auto",
        generator_factory: Callable[[], Any] | None = None,
        max_attempts: int = 3,
    ) -> None:
        """``threads=1``: for a 3.5M-parameter model one token step is too small to split, and
        extra threads only fight the web server for the CPU (measured: p95 5.8 s with 2 threads
        on a busy 2-core box, 0.67 s with 1). ``generator_factory`` replaces the model loader
        (tests, other engines)."""
        self.model_path = str(model_path)
        self.deadline_s = float(deadline_s)
        self._model_config = config  # None: the model's own defaults (its story_config.json)
        self.config = (config or StoryConfig()).live()
        self.threads = threads
        self.engine = engine
        self.max_attempts = max_attempts
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._ready = threading.Event()
        self._load_error: BaseException | None = None
        self._generator: Any = None
        self._factory = generator_factory
        self._thread = threading.Thread(target=self._worker, name="bedtime-live", daemon=True)
        self._thread.start()

    # -- worker side

    def _worker(self) -> None:
        try:
            if self._factory is not None:
                self._generator = self._factory()
            else:
                from generator.generation.factory import open_story_generator

                self._generator = open_story_generator(
                    self.model_path,
                    self._model_config,
                    engine=self.engine,
                    threads=self.threads,
                    live=True,
                )
            self._generator.generate([["moon"]], seed=0)  # warm-up: first call pays allocations
        except BaseException as exc:
            logger.exception("live model %s failed to load", self.model_path)
            self._load_error = exc
        finally:
            self._ready.set()
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            keywords, deadline, future = item
            if not future.set_running_or_notify_cancel():
                continue
            if time.monotonic() >= deadline:
                future.set_result(None)  # waited too long in the queue: nobody is listening
                continue
            try:
                future.set_result(self._tell_now(keywords, deadline))
            except BaseException as exc:
                future.set_exception(exc)

    def _tell_now(self, keywords: Sequence[str], deadline: float) -> GeneratedStory | None:
        """Generate until a story passes every check, while another attempt fits the deadline."""
        if self._generator is None:
            return None
        for attempt in range(1, self.max_attempts + 1):
            started = time.monotonic()
            story = self._generator.generate([list(keywords)], deadline=deadline)[0]
            if story.status == APPROVED:
                return story
            took = time.monotonic() - started
            logger.info("live story attempt %d rejected: %s", attempt, story.rejection_reason)
            if time.monotonic() + 1.5 * took > deadline:
                break
        return None

    # -- caller side

    @property
    def ready(self) -> bool:
        """True once the model is loaded (and warmed up)."""
        return self._ready.is_set() and self._load_error is None

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Block until the model is loaded; False on timeout or load failure."""
        return self._ready.wait(timeout_s) and self._load_error is None

    def tell(
        self, keywords: Sequence[str], timeout_s: float | None = None
    ) -> GeneratedStory | None:
        """A safe, approved story about ``keywords`` within ``timeout_s``, else None.

        Never raises for generation problems (a bedtime skill must answer something): errors
        are logged and give None.
        """
        timeout = self.deadline_s if timeout_s is None else min(float(timeout_s), self.deadline_s)
        started = time.monotonic()
        if not self._ready.wait(timeout):
            logger.warning("live model not loaded yet; no live story")
            return None
        if self._load_error is not None:
            return None
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            return None
        future: Future[GeneratedStory | None] = Future()
        # The worker stops generating a little before the caller gives up.
        self._jobs.put((list(keywords), time.monotonic() + remaining * 0.95, future))
        try:
            return future.result(timeout=remaining)
        except FutureTimeout:
            future.cancel()
            logger.info("live story for %s missed the %.1fs deadline", list(keywords), timeout)
            return None
        except Exception:
            logger.exception("live generation failed for %s", list(keywords))
            return None

    def close(self) -> None:
        """Stop the worker thread (the model is freed with it)."""
        self._jobs.put(_STOP)
        self._thread.join(timeout=5)

"""The batch job's work loop: leases held while working, batches, and stories stored whole.

Why leases: a worker holds each listener request it claimed and each plan keyword set it works on
with a lease in the database (:mod:`db.store.leases`). A :class:`LeaseKeeper` thread renews them
while the model works; a stopped worker releases them (unfinished requests back to pending); a
killed one's leases lapse after ``lease`` and any worker takes over. Because a plan set has one
holder at a time and a story is stored only in a transaction that re-checks the lease and the
set's count, any number of workers, with or without ``--shard``, never overfill a target.

Importing this module is torch-free; the generator object is passed in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from db.generation_jobs import APPROVED, PENDING, REJECTED

logger = logging.getLogger(__name__)

#: Tries for one story's transaction when workers' transactions deadlock.
STORE_RETRIES = 5


@dataclass(frozen=True)
class Job:
    """One story to generate: its keywords and, for queue work, the request it answers."""

    keywords: tuple[str, ...]
    request_id: int | None = None


@dataclass
class SetWork:
    """A plan keyword set this worker holds: stories still wanted and generations allowed."""

    keywords: tuple[str, ...]
    target: int
    remaining: int
    budget: int

    @property
    def done(self) -> bool:
        return self.remaining <= 0 or self.budget <= 0


class LeaseKeeper:
    """Renews this worker's request claims and plan-set leases every ``lease / 3`` seconds."""

    def __init__(
        self, session_factory: Callable[[], Any], worker_id: str, locale: str, lease: timedelta
    ) -> None:
        self._factory = session_factory
        self._worker = worker_id
        self._locale = locale
        self._lease = lease
        self._requests: set[int] = set()
        self._sets: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def hold(self, *, requests: Sequence[int] = (), set_key: str | None = None) -> None:
        with self._lock:
            self._requests.update(requests)
            if set_key is not None:
                self._sets.add(set_key)

    def drop(self, *, request: int | None = None, set_key: str | None = None) -> None:
        with self._lock:
            self._requests.discard(request)  # type: ignore[arg-type]
            self._sets.discard(set_key)  # type: ignore[arg-type]

    @property
    def requests(self) -> set[int]:
        with self._lock:
            return set(self._requests)

    def renew(self) -> None:
        from db.store import renew_plan_leases, renew_request_claims

        with self._lock:
            requests, sets = set(self._requests), set(self._sets)
        try:
            with self._factory() as session:
                renew_request_claims(session, self._worker, requests)
                renew_plan_leases(session, self._worker, sets, self._locale, self._lease)
        except SQLAlchemyError as exc:  # the next renewal may work; the lease has slack
            logger.warning("could not renew leases of %s: %s", self._worker, exc)

    def _loop(self) -> None:
        interval = max(0.2, self._lease.total_seconds() / 3)
        while not self._stop.wait(interval):
            self.renew()


@dataclass
class WorkState:
    """What the loop needs between batches."""

    session_factory: Callable[[], Any]
    generator: Any
    worker_id: str
    locale: str
    lease: timedelta
    keeper: LeaseKeeper
    model_id: int | None
    max_attempts: int
    request_jobs: list[Job]
    plan: Iterator[tuple[tuple[str, ...], int]]
    active: dict[tuple[str, ...], SetWork] = field(default_factory=dict)
    attempts: Counter[int] = field(default_factory=Counter)


def claim_sets(state: WorkState, wanted_jobs: int) -> None:
    """Take plan sets (in plan order) until the held ones can fill ``wanted_jobs`` generations.

    A set another worker holds is skipped; a set that is already full (its count is re-read
    now, under our lease) is released at once.
    """
    from db.generation_jobs import keyword_set_count
    from db.store import claim_plan_set, keyword_set_key, release_plan_sets

    while sum(w.remaining for w in state.active.values()) < wanted_jobs:
        item = next(state.plan, None)
        if item is None:
            return
        keywords, target = item
        key = keyword_set_key(keywords)
        with state.session_factory() as session:
            if not claim_plan_set(session, state.worker_id, keywords, state.locale, state.lease):
                continue
            have = keyword_set_count(session, keywords)
            if have >= target:
                release_plan_sets(session, state.worker_id, [key])
                continue
        state.keeper.hold(set_key=key)
        wanted = target - have
        state.active[keywords] = SetWork(keywords, target, wanted, wanted * state.max_attempts)


def next_batch(state: WorkState, size: int) -> list[Job]:
    """Requests first, then round robin over held plan sets (never more than a set still needs)."""
    batch = state.request_jobs[:size]
    del state.request_jobs[: len(batch)]
    if len(batch) < size:
        claim_sets(state, size - len(batch))
    taken: Counter[tuple[str, ...]] = Counter()
    while len(batch) < size:
        added = False
        for keywords, work in state.active.items():
            if len(batch) < size and taken[keywords] < min(work.remaining, work.budget):
                batch.append(Job(keywords))
                taken[keywords] += 1
                added = True
        if not added:
            break
    return batch


def store_story(
    state: WorkState,
    story: Any,
    job: Job,
    summary: Any,
    guard: Callable[[Any], bool] | None = None,
) -> bool:
    """One story (and its request's completion) in one transaction; False if ``guard`` refused.

    ``guard`` runs inside the transaction (the lease and count check of a plan set). A lock
    conflict between workers (InnoDB deadlock) rolls the whole transaction back; it is retried.
    """
    from db.store import is_lock_conflict

    for attempt in range(1, STORE_RETRIES + 1):
        try:
            return _store_once(state, story, job, summary, guard)
        except OperationalError as exc:
            if not is_lock_conflict(exc) or attempt == STORE_RETRIES:
                raise
            logger.info("storing a story hit a lock conflict; retry %d", attempt)
            time.sleep(0.05 * attempt)
    return False  # pragma: no cover - the loop returns or raises


def _store_once(
    state: WorkState, story: Any, job: Job, summary: Any, guard: Callable[[Any], bool] | None
) -> bool:
    from db.generation_jobs import record_generated_story

    with state.session_factory() as session:
        try:
            if guard is not None and not guard(session):
                session.rollback()
                return False
            stored = record_generated_story(
                session,
                story.to_draft(model_id=state.model_id, locale=state.locale),
                job.request_id,
                story.rejection_reason,
            )
            session.commit()
        except BaseException:
            session.rollback()
            raise
    summary.duplicates += stored.duplicate
    summary.requests_done += stored.request_done
    return True


def settle_request(state: WorkState, job: Job, story: Any, summary: Any) -> None:
    """A request's story: done, or rejected and retried until its attempts run out."""
    assert job.request_id is not None
    state.attempts[job.request_id] += 1
    if story.status == REJECTED:
        summary.rejected += 1
        summary.reasons[reason_class(story.rejection_reason)] += 1
        retry = state.attempts[job.request_id] < state.max_attempts
        # A request is failed only when its last attempt is rejected.
        store_story(state, story, Job(job.keywords) if retry else job, summary)
        if retry:
            state.request_jobs.append(job)
            return
        summary.requests_failed += 1
    else:
        store_story(state, story, job, summary)
        count_accepted(story, job, summary)
    state.keeper.drop(request=job.request_id)


def settle_plan_story(state: WorkState, job: Job, story: Any, summary: Any) -> None:
    """A plan set's story: stored only while we hold the set and it is short of its target."""
    from db.generation_jobs import keyword_set_count
    from db.store import hold_plan_set

    work = state.active[job.keywords]
    work.budget -= 1
    if story.status == REJECTED:
        summary.rejected += 1
        summary.reasons[reason_class(story.rejection_reason)] += 1
        store_story(state, story, job, summary)  # kept for diagnosis; never counts
        return

    def still_ours(session: Any) -> bool:
        held = hold_plan_set(session, state.worker_id, job.keywords, state.locale, state.lease)
        return held and keyword_set_count(session, job.keywords) < work.target

    if store_story(state, story, job, summary, guard=still_ours):
        work.remaining -= 1
        count_accepted(story, job, summary)
    else:
        logger.warning("set %s is full or no longer ours; story dropped", "+".join(job.keywords))
        summary.dropped += 1
        work.remaining = 0


def release_finished_sets(state: WorkState) -> None:
    from db.store import keyword_set_key, release_plan_sets

    finished = [k for k, work in state.active.items() if work.done]
    if not finished:
        return
    keys = [keyword_set_key(k) for k in finished]
    with state.session_factory() as session:
        release_plan_sets(session, state.worker_id, keys)
    for keywords, key in zip(finished, keys, strict=True):
        state.keeper.drop(set_key=key)
        del state.active[keywords]


def release_everything(session_factory: Callable[[], Any], worker_id: str) -> None:
    """On the way out (done, stopped, failed): every request still claimed by us back to
    pending, every plan set we hold freed, and dead workers' lapsed leases cleared; whatever
    we cannot free lapses by itself."""
    from db.store import clear_lapsed_plan_leases, release_plan_sets, release_request_claims

    try:
        with session_factory() as session:
            release_request_claims(session, worker_id)
            release_plan_sets(session, worker_id)
            clear_lapsed_plan_leases(session)
    except Exception as exc:  # leaving anyway: a lease we cannot free lapses by itself
        logger.warning("could not release leases (they lapse by themselves): %s", exc)


def count_accepted(story: Any, job: Job, summary: Any) -> None:
    summary.approved += story.status == APPROVED
    summary.pending += story.status == PENDING
    summary.keywords_covered.update(job.keywords)


def reason_class(reason: str | None) -> str:
    """Group rejection reasons for the summary ("too short (41 words < 60)" -> "too short")."""
    if not reason:
        return "unknown"
    return reason.split(" (", 1)[0].split(":", 1)[0]


def work_loop(
    state: WorkState,
    summary: Any,
    *,
    batch_size: int,
    max_stories: int | None,
    deadline: float | None,
    rng: Any,
    on_story: Callable[[], None],
) -> None:
    """Generate and store until the requests and the plan are done or a limit is reached."""
    while True:
        if deadline is not None and time.monotonic() > deadline:
            summary.stopped_early = "time limit reached"
            return
        size = batch_size
        if max_stories is not None:
            size = min(size, max_stories - summary.generated)
        batch = next_batch(state, size) if size > 0 else []
        if not batch:
            return
        tokens_before = state.generator.stats["tokens"]
        stories = state.generator.generate([j.keywords for j in batch], seed=rng.randrange(2**31))
        summary.tokens += state.generator.stats["tokens"] - tokens_before
        for job, story in zip(batch, stories, strict=True):
            summary.generated += 1
            if job.request_id is not None:
                settle_request(state, job, story, summary)
            else:
                settle_plan_story(state, job, story, summary)
            on_story()
        release_finished_sets(state)

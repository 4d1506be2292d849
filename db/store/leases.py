"""Leases: how generation workers hold work without blocking it forever when they die.

A worker's claim on a listener request (``generation_requests.claimed_at``) and on a keyword set
of the batch plan (``plan_leases``) lapses ``lease`` after its last renewal. A live worker renews
both while it works; a stopped one releases them (requests it had not finished go back to
*pending* without spending an attempt); a killed one's leases lapse and any worker takes over.

Every function commits nothing except where it says so: claims and releases commit at once so
other workers see them.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import case, insert, or_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.models import GenerationRequest, PlanLease, RequestStatus
from db.models import _utcnow as utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRIES = 5
# InnoDB deadlock / lock wait timeout: the transaction was rolled back, trying again is safe.
# 1305 (savepoint does not exist) is the same deadlock seen from inside a SAVEPOINT (the store's
# keyword upsert): InnoDB rolled the whole transaction back, so its savepoints are gone too.
_MYSQL_RETRYABLE = {1213, 1205, 1305}


def is_lock_conflict(exc: BaseException) -> bool:
    """An InnoDB deadlock or lock wait timeout: the transaction was rolled back; retry it."""
    orig = getattr(exc, "orig", None)
    code = orig.args[0] if orig is not None and getattr(orig, "args", None) else None
    return isinstance(exc, OperationalError) and code in _MYSQL_RETRYABLE


def keyword_set_key(keywords: Sequence[str]) -> str:
    """The one spelling of a keyword set: sorted, unique, "|"-joined (as in the request queue)."""
    return "|".join(sorted(set(keywords)))


# --------------------------------------------------------------------------- plan sets


def retry_lock_conflicts(action: Callable[..., T]) -> Callable[..., T]:
    """Run ``action(session, ...)``, a statement or two that commit on their own, again after an
    InnoDB deadlock or lock wait timeout (rolled back, so trying again is safe).

    Two workers claiming (leases, queued requests), renewing and releasing on the same tables
    do deadlock now and then (gap locks of the ``holder`` index); without a retry the worker
    died of it.
    """

    @functools.wraps(action)
    def retrying(session: Session, *args: Any, **kwargs: Any) -> T:
        for attempt in range(1, _RETRIES + 1):
            try:
                return action(session, *args, **kwargs)
            except OperationalError as exc:
                session.rollback()
                if not is_lock_conflict(exc) or attempt == _RETRIES:
                    raise
                log.info("%s hit a lock conflict; retry %d", action.__name__, attempt)
                time.sleep(0.02 * attempt * random.random())
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    return retrying


@retry_lock_conflicts
def claim_plan_set(
    session: Session, worker_id: str, keywords: Sequence[str], locale: str, lease: timedelta
) -> bool:
    """Take the set for ``lease`` if it is free, lapsed or already ours; COMMITS either way.

    An INSERT-if-missing then a conditional UPDATE, atomic on both backends (InnoDB row lock /
    SQLite write lock), so of two workers racing for one set exactly one gets it. A deadlock
    InnoDB reports between two racing inserts rolls back and is retried.
    """
    return _claim_plan_set_once(session, worker_id[:200], keywords, locale, lease)


def _claim_plan_set_once(
    session: Session, worker_id: str, keywords: Sequence[str], locale: str, lease: timedelta
) -> bool:
    key, now = keyword_set_key(keywords), utcnow()
    ignore = "IGNORE" if session.get_bind().dialect.name in {"mysql", "mariadb"} else "OR IGNORE"
    inserted = session.execute(
        insert(PlanLease)
        .prefix_with(ignore)
        .values(keywords_key=key, locale=locale, holder=worker_id, expires_at=now + lease)
    ).rowcount
    if inserted == 1:
        session.commit()
        return True
    taken = session.execute(
        update(PlanLease)
        .where(
            PlanLease.keywords_key == key,
            PlanLease.locale == locale,
            or_(
                PlanLease.holder.is_(None),
                PlanLease.holder == worker_id,
                PlanLease.expires_at < now,
            ),
        )
        .values(holder=worker_id, expires_at=now + lease)
    ).rowcount
    session.commit()
    return taken == 1


def hold_plan_set(
    session: Session, worker_id: str, keywords: Sequence[str], locale: str, lease: timedelta
) -> bool:
    """Renew our lease on one set inside the caller's transaction; False if it lapsed to another.

    The batch job calls it in the transaction that stores a story, so a story is only ever
    stored by the set's current holder. No commit.
    """
    now = utcnow()
    return (
        session.execute(
            update(PlanLease)
            .where(
                PlanLease.keywords_key == keyword_set_key(keywords),
                PlanLease.locale == locale,
                PlanLease.holder == worker_id[:200],
            )
            .values(expires_at=now + lease)
        ).rowcount
        == 1
    )


@retry_lock_conflicts
def renew_plan_leases(
    session: Session, worker_id: str, keys: Collection[str], locale: str, lease: timedelta
) -> int:
    """Push our leases on these sets (keyword_set_key spellings) ``lease`` ahead. Commits."""
    if not keys:
        return 0
    renewed = session.execute(
        update(PlanLease)
        .where(
            PlanLease.keywords_key.in_(list(keys)),
            PlanLease.locale == locale,
            PlanLease.holder == worker_id[:200],
        )
        .values(expires_at=utcnow() + lease)
    ).rowcount
    session.commit()
    return int(renewed)


@retry_lock_conflicts
def release_plan_sets(session: Session, worker_id: str, keys: Collection[str] | None = None) -> int:
    """Give up our leases (all of them when ``keys`` is None). Commits."""
    stmt = update(PlanLease).where(PlanLease.holder == worker_id[:200])
    if keys is not None:
        if not keys:
            return 0
        stmt = stmt.where(PlanLease.keywords_key.in_(list(keys)))
    released = session.execute(stmt.values(holder=None, expires_at=None)).rowcount
    session.commit()
    return int(released)


@retry_lock_conflicts
def clear_lapsed_plan_leases(session: Session) -> int:
    """Free every lease that has lapsed (its holder died or stalled). Commits.

    A lapsed lease is already free to claim, but on a set the plan no longer needs (a dead
    worker had filled it) nobody ever claims it again, and the row would name the dead worker
    as holder for good. Its holder, had it only stalled, loses nothing it still had:
    ``hold_plan_set`` is how a stalled holder finds its lease gone.
    """
    cleared = session.execute(
        update(PlanLease)
        .where(PlanLease.holder.is_not(None), PlanLease.expires_at < utcnow())
        .values(holder=None, expires_at=None)
    ).rowcount
    session.commit()
    return int(cleared)


# --------------------------------------------------------------------------- listener requests


@retry_lock_conflicts
def renew_request_claims(session: Session, worker_id: str, request_ids: Collection[int]) -> int:
    """Our claims on these requests count as fresh again (claimed_at = now). Commits."""
    if not request_ids:
        return 0
    renewed = session.execute(
        update(GenerationRequest)
        .where(
            GenerationRequest.id.in_(list(request_ids)),
            GenerationRequest.claimed_by == worker_id[:200],
            GenerationRequest.status == RequestStatus.CLAIMED.value,
        )
        .values(claimed_at=utcnow())
    ).rowcount
    session.commit()
    return int(renewed)


@retry_lock_conflicts
def release_request_claims(
    session: Session, worker_id: str, request_ids: Collection[int] | None = None
) -> int:
    """Requests we claimed but did not finish (all of ours when ``request_ids`` is None) go back
    to pending; the attempt is not spent.

    Commits. Only rows still claimed by us change (a request another worker took over after our
    lease lapsed is theirs).
    """
    if request_ids is not None and not request_ids:
        return 0
    stmt = update(GenerationRequest).where(
        GenerationRequest.claimed_by == worker_id[:200],
        GenerationRequest.status == RequestStatus.CLAIMED.value,
    )
    if request_ids is not None:
        stmt = stmt.where(GenerationRequest.id.in_(list(request_ids)))
    released = session.execute(
        stmt.values(
            status=RequestStatus.PENDING.value,
            claimed_by=None,
            claimed_at=None,
            attempts=case(
                (GenerationRequest.attempts > 0, GenerationRequest.attempts - 1), else_=0
            ),
        )
    ).rowcount
    session.commit()
    if released:
        log.info("worker %s gave back %d unfinished requests", worker_id, released)
    return int(released)

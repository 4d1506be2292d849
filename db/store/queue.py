"""The generation queue: demand for stories we lack, claimed by generator workers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from db import raw
from db.keywords import normalize_keywords
from db.models import (
    GenerationRequest,
    RequestStatus,
    _utcnow,
)
from db.store.leases import retry_lock_conflicts
from safety.requests import first_redirect

log = logging.getLogger(__name__)

#: A generation request is retried at most this many times.
MAX_ATTEMPTS = 5
#: A claim not renewed for this long is abandoned (worker died) and may be claimed again. Workers
#: renew their claims while they work (:func:`db.store.leases.renew_request_claims`); the batch
#: job passes BEDTIME_LEASE_SECONDS instead of this default.
CLAIM_TIMEOUT = timedelta(minutes=5)


class RedirectedRequest(ValueError):
    """A requested keyword is redirected by the request policy: it is never queued."""


def _keyword_key(lemmas: Sequence[str]) -> str:
    return "|".join(lemmas)


def request_generation(session: Session, keywords: Sequence[str], locale: str) -> GenerationRequest:
    """Record that a listener wanted a story about ``keywords``: upsert, demand_count += 1.

    A done or failed request is reopened (pending): the demand shows the catalogue still lacks it.
    A word the request policy redirects (:mod:`safety.requests`) is never queued:
    :class:`RedirectedRequest`.
    """
    statement, values = demand_write(session.get_bind().dialect.name, keywords, locale)
    session.execute(statement, values)
    request = session.scalars(
        select(GenerationRequest)
        .where(
            GenerationRequest.keywords_key == values["keywords_key"],
            GenerationRequest.locale == locale,
        )
        .execution_options(populate_existing=True)
    ).one()
    log.info(
        "generation wanted for %s (%s), demand now %d", values["keywords"], locale,
        request.demand_count,
    )  # fmt: skip
    return request


def demand_write(dialect: str, keywords: Sequence[str], locale: str) -> raw.Write:
    """The upsert :func:`request_generation` runs, as a statement and its values, for a skill
    turn to send with its other writes and its COMMIT (one round trip on MariaDB, db/turn.py).

    Checked here, before anything is sent: the request policy (:class:`RedirectedRequest`) and
    the key's length (ValueError).
    """
    lemmas = sorted(set(normalize_keywords(list(keywords))))
    if not lemmas:
        raise ValueError("a generation request needs at least one keyword")
    redirected = first_redirect([*keywords, *lemmas])
    if redirected is not None:
        raise RedirectedRequest(f"the request policy redirects {redirected.word!r}; not queued")
    key = _keyword_key(lemmas)
    if len(key) > 255:
        raise ValueError("too many or too long keywords for one request")
    values = {"keywords_key": key, "keywords": lemmas, "locale": locale, "now": _utcnow()}
    return _demand_statement(dialect), values


@functools.cache
def _demand_statement(dialect: str) -> Any:
    """INSERT a pending request with demand 1; an existing one counts one more demand and, done
    or failed, is reopened."""
    table = GenerationRequest.__table__
    values = {
        "keywords_key": bindparam("keywords_key"),
        "keywords": bindparam("keywords", type_=table.c.keywords.type),
        "locale": bindparam("locale"),
        "demand_count": 1,
        "status": RequestStatus.PENDING.value,
        "attempts": 0,
        "created_at": bindparam("now", type_=table.c.created_at.type),
        "updated_at": bindparam("now", type_=table.c.updated_at.type),
    }
    ended = or_(
        table.c.status == RequestStatus.DONE.value, table.c.status == RequestStatus.FAILED.value
    )  # not IN (...): an expanding parameter would keep it from running on the driver's cursor
    status_after = case((ended, RequestStatus.PENDING.value), else_=table.c.status)
    if dialect in {"mysql", "mariadb"}:
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(table).values(values)
        # Assignment order matters on MySQL: status is computed from the old row first.
        return stmt.on_duplicate_key_update(
            [
                ("status", status_after),
                ("demand_count", table.c.demand_count + 1),
                ("updated_at", stmt.inserted.updated_at),
            ]
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    stmt = sqlite_insert(table).values(values)
    return stmt.on_conflict_do_update(
        index_elements=["keywords_key", "locale"],
        set_={
            "status": status_after,
            "demand_count": table.c.demand_count + 1,
            "updated_at": stmt.excluded.updated_at,
        },
    )


def claim_generation_requests(
    session: Session, worker_id: str, limit: int, lease: timedelta = CLAIM_TIMEOUT
) -> list[GenerationRequest]:
    """Claim up to ``limit`` pending requests, most demanded first, and COMMIT the claim.

    MySQL/MariaDB: ``SELECT ... FOR UPDATE SKIP LOCKED`` under READ COMMITTED (no gap locks),
    so concurrent workers never claim the same row and never wait for each other; a deadlock
    reported by InnoDB is retried. SQLite: a no-op UPDATE first takes the database write lock
    (BEGIN IMMEDIATE-style), serialising claimers. Claims not renewed within ``lease`` (dead
    worker) are claimable again. Call it with a session that has no unsaved work.
    """
    if limit <= 0:
        return []
    claimed = _claim(session, worker_id, limit, lease)
    if claimed:
        log.info("worker %s claimed requests %s", worker_id, [r.id for r in claimed])
    return claimed


@retry_lock_conflicts
def _claim(
    session: Session, worker_id: str, limit: int, lease: timedelta
) -> list[GenerationRequest]:
    """One claiming transaction; an InnoDB deadlock rolls it back and it runs again."""
    now = _utcnow()
    claimable = or_(
        GenerationRequest.status == RequestStatus.PENDING.value,
        and_(
            GenerationRequest.status == RequestStatus.CLAIMED.value,
            GenerationRequest.claimed_at < now - lease,
        ),
    )
    stmt = (
        select(GenerationRequest)
        .where(claimable, GenerationRequest.attempts < MAX_ATTEMPTS)
        .order_by(GenerationRequest.demand_count.desc(), GenerationRequest.id)
        .limit(limit)
    )
    bind = session.get_bind()
    dialect = bind.dialect.name
    if dialect in {"mysql", "mariadb"}:
        if isinstance(bind, Engine) and not session.in_transaction():
            session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        stmt = stmt.with_for_update(skip_locked=True)
    elif dialect == "sqlite":
        session.execute(text("UPDATE generation_requests SET status = status WHERE 0"))
    else:  # pragma: no cover - other engines: plain row locks
        stmt = stmt.with_for_update()
    claimed = list(session.scalars(stmt.execution_options(populate_existing=True)))
    for request in claimed:
        request.status = RequestStatus.CLAIMED.value
        request.claimed_by = worker_id[:200]
        request.claimed_at = now
        request.attempts += 1
    session.commit()
    return claimed


def complete_generation_request(
    session: Session, request_id: int, story_id: int | None, error: str | None = None
) -> GenerationRequest:
    """Mark a claimed request done (with the story made) or failed (with the error). No commit."""
    request = session.get(GenerationRequest, request_id)
    if request is None:
        raise LookupError(f"no generation request with id {request_id}")
    if error is not None or story_id is None:
        request.status = RequestStatus.FAILED.value
        request.last_error = (error or "no story produced")[:4000]
        log.warning("generation request %s failed: %s", request_id, request.last_error)
    else:
        request.status = RequestStatus.DONE.value
        request.story_id = story_id
        request.last_error = None
    session.flush()
    return request


def pending_generation_count(session: Session) -> int:
    """How many requests are waiting (for status displays)."""
    return (
        session.scalar(
            select(func.count()).where(GenerationRequest.status == RequestStatus.PENDING.value)
        )
        or 0
    )

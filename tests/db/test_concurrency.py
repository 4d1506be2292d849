"""Concurrent queue claims: two workers never get the same request.

Uses real commits on the shared test engine (not the rolled-back session), so it cleans up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete

from db import store
from db.engine import session_factory
from db.models import GenerationRequest

REQUESTS = 40
WORKERS = 4


@pytest.fixture
def queued(db_engine: Engine) -> Iterator[list[int]]:
    factory = session_factory(db_engine)
    with factory() as session:
        ids = [
            store.request_generation(session, [f"thing{i}"], "en-US").id for i in range(REQUESTS)
        ]
        session.commit()
    yield ids
    with factory() as session:
        session.execute(delete(GenerationRequest).where(GenerationRequest.id.in_(ids)))
        session.commit()


def test_concurrent_claims_never_overlap(db_engine: Engine, queued: list[int]) -> None:
    factory = session_factory(db_engine)
    claims: dict[str, list[int]] = {f"worker-{n}": [] for n in range(WORKERS)}
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def work(worker: str) -> None:
        try:
            start.wait()
            while True:
                with factory() as session:
                    batch = store.claim_generation_requests(session, worker, 3)
                if not batch:
                    return
                claims[worker].extend(r.id for r in batch)
        except BaseException as exc:  # surfaced below with the worker's name
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    claimed = [i for ids in claims.values() for i in ids]
    assert len(claimed) == len(set(claimed)), "a request was claimed twice"
    assert sorted(claimed) == sorted(queued)
    with factory() as session:
        rows = [session.get_one(GenerationRequest, i) for i in queued]
        owner = {i: w for w, ids in claims.items() for i in ids}
        assert all(r.status == "claimed" and r.claimed_by == owner[r.id] for r in rows)


def test_skip_locked_does_not_wait(db_engine: Engine, queued: list[int], db_backend: str) -> None:
    """MySQL: rows locked by an open claim are skipped, not waited for."""
    if db_backend != "mysql":
        pytest.skip("SKIP LOCKED is MySQL/MariaDB only; SQLite serialises claimers instead")
    factory = session_factory(db_engine)
    holder = factory()
    try:
        from sqlalchemy import select

        locked = holder.scalars(
            select(GenerationRequest.id)
            .where(GenerationRequest.id.in_(queued[:5]))
            .with_for_update()
        ).all()
        assert len(locked) == 5
        with factory() as session:
            session.connection().exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 2")
            got = store.claim_generation_requests(session, "other", REQUESTS)
        assert {r.id for r in got} == set(queued) - set(locked)
    finally:
        holder.rollback()
        holder.close()

"""Leases: plan sets held by one worker at a time, lapsing when it dies; requests given back."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from db import store
from db.generation_jobs import keyword_set_count
from db.models import GenerationRequest, PlanLease
from db.models import _utcnow as utcnow
from tests.db.test_store import add

LEASE = timedelta(minutes=5)


def _let_lapse(db_session: Session, holder: str) -> None:
    """The holder's leases expired a second ago, as a dead worker's do."""
    db_session.execute(
        update(PlanLease)
        .where(PlanLease.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db_session.commit()


def test_a_plan_set_has_one_holder(db_session: Session) -> None:
    assert store.claim_plan_set(db_session, "w1", ["owl", "moon"], "en-US", LEASE)
    assert not store.claim_plan_set(db_session, "w2", ["moon", "owl"], "en-US", LEASE)
    assert store.claim_plan_set(db_session, "w1", ["moon", "owl"], "en-US", LEASE)  # ours again
    assert store.claim_plan_set(db_session, "w2", ["moon", "owl"], "en-GB", LEASE)  # per locale
    assert store.hold_plan_set(db_session, "w1", ["owl", "moon"], "en-US", LEASE)
    assert not store.hold_plan_set(db_session, "w2", ["owl", "moon"], "en-US", LEASE)


def test_a_dead_workers_lease_lapses_and_a_released_one_is_free(db_session: Session) -> None:
    assert store.claim_plan_set(db_session, "dead", ["owl"], "en-US", LEASE)
    assert store.claim_plan_set(db_session, "done", ["cat"], "en-US", LEASE)
    _let_lapse(db_session, "dead")
    assert store.release_plan_sets(db_session, "done") == 1
    assert store.claim_plan_set(db_session, "w2", ["owl"], "en-US", LEASE)
    assert store.claim_plan_set(db_session, "w2", ["cat"], "en-US", LEASE)
    # The dead worker, had it only been stalled, can no longer store into the set.
    assert not store.hold_plan_set(db_session, "dead", ["owl"], "en-US", LEASE)


def test_lapsed_leases_are_cleared_and_live_ones_kept(db_session: Session) -> None:
    assert store.claim_plan_set(db_session, "dead", ["owl"], "en-US", LEASE)
    assert store.claim_plan_set(db_session, "alive", ["cat"], "en-US", LEASE)
    _let_lapse(db_session, "dead")
    assert store.clear_lapsed_plan_leases(db_session) == 1
    holders = {lease.keywords_key: lease.holder for lease in db_session.scalars(select(PlanLease))}
    assert holders == {"owl": None, "cat": "alive"}
    assert store.clear_lapsed_plan_leases(db_session) == 0


def test_renewal_keeps_only_our_own_leases_fresh(db_session: Session) -> None:
    store.claim_plan_set(db_session, "w1", ["owl"], "en-US", timedelta(seconds=1))
    key = store.keyword_set_key(["owl"])
    assert store.renew_plan_leases(db_session, "w1", {key}, "en-US", LEASE) == 1
    assert store.renew_plan_leases(db_session, "w2", {key}, "en-US", LEASE) == 0
    lease = db_session.scalars(select(PlanLease)).one()
    assert lease.expires_at is not None and lease.expires_at > utcnow() + timedelta(minutes=4)


def test_unfinished_requests_go_back_to_pending_unspent(db_session: Session) -> None:
    request = store.request_generation(db_session, ["owl"], "en-US")
    other = store.request_generation(db_session, ["moon"], "en-US")
    claimed = store.claim_generation_requests(db_session, "w1", 2)
    assert {r.attempts for r in claimed} == {1}
    store.complete_generation_request(db_session, other.id, None, "rejected")
    db_session.commit()
    assert store.release_request_claims(db_session, "w2", [request.id]) == 0  # not theirs
    assert store.release_request_claims(db_session, "w1", [request.id, other.id]) == 1
    back = db_session.get(GenerationRequest, request.id)
    assert back is not None
    db_session.refresh(back)
    assert (back.status, back.claimed_by, back.attempts) == ("pending", None, 0)


def test_a_renewed_request_claim_is_not_taken_over(db_session: Session) -> None:
    request = store.request_generation(db_session, ["owl"], "en-US")
    store.claim_generation_requests(db_session, "w1", 1, lease=timedelta(seconds=30))
    db_session.execute(
        update(GenerationRequest).values(claimed_at=utcnow() - timedelta(seconds=60))
    )
    db_session.commit()
    assert store.renew_request_claims(db_session, "w1", [request.id]) == 1
    assert store.claim_generation_requests(db_session, "w2", 1, lease=timedelta(seconds=30)) == []
    db_session.execute(
        update(GenerationRequest).values(claimed_at=utcnow() - timedelta(seconds=60))
    )
    db_session.commit()
    taken = store.claim_generation_requests(db_session, "w2", 1, lease=timedelta(seconds=30))
    assert [r.id for r in taken] == [request.id]


def test_keyword_set_count_is_exact(db_session: Session) -> None:
    add(db_session, "Owl one", ["owl"])
    add(db_session, "Owl two", ["owl"], status="pending")
    add(db_session, "Owl rejected", ["owl"], status="rejected")
    add(db_session, "Owl and moon", ["owl", "moon"])
    add(db_session, "Owl moon cat", ["owl", "moon", "cat"])
    assert keyword_set_count(db_session, ["owl"]) == 2
    assert keyword_set_count(db_session, ["moon", "owl"]) == 1
    assert keyword_set_count(db_session, ["moon"]) == 0


def _take(session: Session, key: str, holder: str) -> None:
    """Lock one lease row by its unique key (a full scan would lock every row)."""
    session.execute(
        update(PlanLease)
        .where(PlanLease.keywords_key == key, PlanLease.locale == "en-US")
        .values(holder=holder)
    )


@contextlib.contextmanager
def _record_errors(errors: list[BaseException]) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:  # a thread's failure, reported by the test
        errors.append(exc)


def test_a_lease_statement_that_loses_a_real_deadlock_is_retried(
    db_engine: Engine, db_backend: str
) -> None:
    """Two workers' lease statements deadlock now and then on MariaDB; the loser must retry,
    not die (a batch worker crashed of it releasing a set, 1 fault-test run in 8).

    A real deadlock: the action locks row "a" then wants "b"; another connection, which has
    changed more rows (so InnoDB rolls the action back, the lighter one), holds "b" and wants "a".
    """
    if db_backend != "mysql":
        pytest.skip("SQLite's one write lock cannot deadlock")
    from db.engine import session_factory
    from db.store.leases import retry_lock_conflicts

    make_session = session_factory(db_engine)
    keys = ["dl-a", "dl-b"] + [f"dl-x{i}" for i in range(6)]
    with make_session() as setup:
        for key in keys:
            setup.add(PlanLease(keywords_key=key, locale="en-US"))
        setup.commit()
    other_holds_b = threading.Event()
    attempts: list[int] = []
    errors: list[BaseException] = []

    def other() -> None:
        with make_session() as session, _record_errors(errors):
            for key in [*keys[2:], "dl-b"]:
                _take(session, key, "other")
            other_holds_b.set()
            time.sleep(0.3)  # let the action take "a" and ask for "b"
            _take(session, "dl-a", "other")
            session.commit()

    @retry_lock_conflicts
    def action(session: Session) -> str:
        attempts.append(1)
        _take(session, "dl-a", "action")
        if len(attempts) == 1:
            thread = threading.Thread(target=other)
            thread.start()
            other_holds_b.wait(5)
            threads.append(thread)
        _take(session, "dl-b", "action")
        session.commit()
        return "done"

    threads: list[threading.Thread] = []
    try:
        with make_session() as session:
            assert action(session) == "done"
        threads[0].join(10)
        assert errors == []
        assert len(attempts) == 2  # the first lost the deadlock, the retry went through
        with make_session() as check:
            holders = dict(
                check.execute(
                    select(PlanLease.keywords_key, PlanLease.holder).where(
                        PlanLease.keywords_key.in_(["dl-a", "dl-b"])
                    )
                ).all()
            )
        assert holders == {"dl-a": "action", "dl-b": "action"}
    finally:
        for thread in threads:
            thread.join(10)
        with make_session() as cleanup:
            cleanup.execute(delete(PlanLease).where(PlanLease.keywords_key.in_(keys)))
            cleanup.commit()


def test_every_lease_statement_that_commits_on_its_own_retries_lock_conflicts() -> None:
    from db.store import leases

    for name in (
        "claim_plan_set",
        "renew_plan_leases",
        "release_plan_sets",
        "clear_lapsed_plan_leases",
        "renew_request_claims",
        "release_request_claims",
    ):
        assert hasattr(getattr(leases, name), "__wrapped__"), name

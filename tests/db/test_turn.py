"""TurnTransaction: one connection, reads without locks, one short write, one commit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from db import store
from db.engine import begin_writing, make_engine, session_factory
from db.models import Base, Listener, Story
from db.store import StoryDraft
from db.turn import TurnTransaction, bind_of
from tests.conftest import create_mysql_database, drop_mysql_database
from tests.statement_counter import Counter


@pytest.fixture
def engine(db_backend: str, tmp_path: Path) -> Iterator[Engine]:
    url = create_mysql_database("bedtime_turn_tx") if db_backend == "mysql" else None
    engine = make_engine(url or f"sqlite:///{tmp_path / 'turn.sqlite3'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
    if url:
        drop_mysql_database(url)


def _write_listener(turn: TurnTransaction, name: str, attributes: dict[str, Any]) -> None:
    """What a turn does at its end: the listener's new attributes, written under the lock."""
    listener = store.open_listener(turn.connection, name)
    listener.set_attributes(attributes)
    turn.begin_writing()
    listener.write(turn.connection)


def _listeners(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(Listener)) or 0)


def test_a_read_only_turn_sends_no_begin_and_no_commit(engine: Engine) -> None:
    factory = session_factory(engine)
    with Counter(engine) as seen:
        turn = TurnTransaction(bind_of(factory), factory)
        store.open_listener(turn.connection, "reader")
        turn.finish()
    assert seen.commits == 0
    assert not any("BEGIN" in s for s in seen.statements)


def test_a_listener_write_commits_once(engine: Engine) -> None:
    factory = session_factory(engine)
    with Counter(engine) as seen:
        turn = TurnTransaction(bind_of(factory), factory)
        _write_listener(turn, "writer", {"a": 1})
        turn.finish()
    assert seen.commits == 1
    assert _listeners(engine) == 1


def test_the_session_joins_the_turn_and_commits_with_it(engine: Engine) -> None:
    factory = session_factory(engine)
    turn = TurnTransaction(bind_of(factory), factory)
    listener = store.open_listener(turn.connection, "asker")
    session = turn.session
    begin_writing(session)  # what Conversation does before queueing a request
    with session.begin_nested():
        store.add_story(session, StoryDraft(title="Owl", text="An owl slept. " * 30))
    listener.set_attributes({"b": 2})
    turn.begin_writing()  # idempotent after the session took the lock
    listener.write(turn.connection)
    with Counter(engine) as seen:
        turn.finish()
    assert seen.commits == 1
    with session_factory(engine)() as check:
        assert check.scalar(select(func.count()).select_from(Story)) == 1
    assert _listeners(engine) == 1


def test_an_abandoned_turn_keeps_nothing_and_frees_the_write_lock(engine: Engine) -> None:
    factory = session_factory(engine)
    turn = TurnTransaction(bind_of(factory), factory)
    _write_listener(turn, "unlucky", {"c": 3})
    turn.abandon()
    assert _listeners(engine) == 0
    other = TurnTransaction(bind_of(factory), factory)  # would wait 10 s on a held lock
    _write_listener(other, "next", {"d": 4})
    other.finish()
    assert _listeners(engine) == 1


def test_a_connection_bound_factory_turns_into_a_savepoint(db_session: Session) -> None:
    """Tests bind sessions to a connection inside a rolled-back transaction: the turn nests."""
    connection = db_session.connection()

    def factory() -> Session:
        return Session(bind=connection, join_transaction_mode="create_savepoint")

    assert bind_of(factory) is connection
    turn = TurnTransaction(connection, factory)
    _write_listener(turn, "nested", {"e": 5})
    turn.finish()
    assert connection.in_transaction()  # the outer transaction is still the test's
    assert store.open_listener(connection, "nested").attributes == {"e": 5}


def test_a_committed_turn_is_not_rolled_back_again_on_checkin(
    engine: Engine, db_backend: str
) -> None:
    """MariaDB: the pool's ROLLBACK on checkin is skipped right after the turn's own COMMIT
    (one round trip of six), and still sent after a turn that only read."""
    if db_backend != "mysql":
        pytest.skip("SQLite's rollback of nothing sends nothing")
    factory = session_factory(engine)
    status = "SHOW SESSION STATUS WHERE Variable_name IN ('Com_commit', 'Com_rollback')"

    def counters() -> dict[str, int]:
        with engine.connect() as connection:  # the pool's one connection, every time
            return {name: int(value) for name, value in connection.exec_driver_sql(status)}

    def turn(write: bool) -> None:
        transaction = TurnTransaction(bind_of(factory), factory)
        if write:
            _write_listener(transaction, "counted", {"n": 1})
        else:
            store.open_listener(transaction.connection, "counted")
        transaction.finish()

    before = counters()
    turn(write=True)
    after_write = counters()
    turn(write=False)
    after_read = counters()
    # Each counters() call itself ends with the pool's rollback: one per call.
    assert after_write["Com_commit"] - before["Com_commit"] == 1
    assert after_write["Com_rollback"] - before["Com_rollback"] == 1
    assert after_read["Com_rollback"] - after_write["Com_rollback"] == 2
    assert after_read["Com_commit"] == after_write["Com_commit"]


def test_a_transaction_answered_only_by_result_sets_still_commits(
    engine: Engine, db_backend: str
) -> None:
    """MariaDB: pymysql's server status is refreshed by OK replies only; a transaction whose
    statements all answered with result sets (a SELECT, an INSERT ... RETURNING) must still send
    its COMMIT. (An early version of the batch's commit hook trusted the status alone and lost
    such a transaction: tests/reliability/test_generator_faults.py found it.)"""
    if db_backend != "mysql":
        pytest.skip("the commit hook is MySQL's")
    from db.models import ModelRecord

    factory = session_factory(engine)
    with factory() as session:
        session.execute(select(func.count()).select_from(Story)).scalar()
        session.add(ModelRecord(name="kept", model_class="LlamaForCausalLM"))
        session.flush()  # INSERT ... RETURNING: a result set, no OK reply
        session.commit()
    with engine.connect() as other:
        assert other.execute(select(ModelRecord.name)).scalars().all() == ["kept"]

"""TurnTransaction: one connection, reads without locks, one short write, one commit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from db import store
from db.engine import begin_writing, make_engine, session_factory
from db.models import Base, Listener, Story
from db.store import StoryDraft
from db.turn import TurnTransaction, bind_of
from tests.conftest import create_mysql_database, drop_mysql_database


@pytest.fixture
def engine(db_backend: str, tmp_path: Path) -> Iterator[Engine]:
    url = create_mysql_database("bedtime_turn_tx") if db_backend == "mysql" else None
    engine = make_engine(url or f"sqlite:///{tmp_path / 'turn.sqlite3'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
    if url:
        drop_mysql_database(url)


class Events:
    def __init__(self, engine: Engine) -> None:
        self.engine, self.statements, self.commits = engine, [], 0

    def _statement(self, _c: Any, _cur: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)

    def _commit(self, _c: Any) -> None:
        self.commits += 1

    def __enter__(self) -> Events:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


def _listeners(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(Listener)) or 0)


def test_a_read_only_turn_sends_no_begin_and_no_commit(engine: Engine) -> None:
    factory = session_factory(engine)
    with Events(engine) as seen:
        turn = TurnTransaction(bind_of(factory), factory)
        store.open_listener(turn.connection, "reader")
        turn.finish()
    assert seen.commits == 0
    assert not any("BEGIN" in s for s in seen.statements)


def test_a_listener_write_commits_once(engine: Engine) -> None:
    factory = session_factory(engine)
    with Events(engine) as seen:
        turn = TurnTransaction(bind_of(factory), factory)
        listener = store.open_listener(turn.connection, "writer")
        listener.set_attributes({"a": 1})
        turn.begin_writing()
        listener.write(turn.connection)
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
    with Events(engine) as seen:
        turn.finish()
    assert seen.commits == 1
    with session_factory(engine)() as check:
        assert check.scalar(select(func.count()).select_from(Story)) == 1
    assert _listeners(engine) == 1


def test_an_abandoned_turn_keeps_nothing_and_frees_the_write_lock(engine: Engine) -> None:
    factory = session_factory(engine)
    turn = TurnTransaction(bind_of(factory), factory)
    listener = store.open_listener(turn.connection, "unlucky")
    listener.set_attributes({"c": 3})
    turn.begin_writing()
    listener.write(turn.connection)
    turn.abandon()
    assert _listeners(engine) == 0
    other = TurnTransaction(bind_of(factory), factory)  # would wait 10 s on a held lock
    second = store.open_listener(other.connection, "next")
    second.set_attributes({"d": 4})
    other.begin_writing()
    second.write(other.connection)
    other.finish()
    assert _listeners(engine) == 1


def test_a_connection_bound_factory_turns_into_a_savepoint(db_session: Session) -> None:
    """Tests bind sessions to a connection inside a rolled-back transaction: the turn nests."""
    connection = db_session.connection()

    def factory() -> Session:
        return Session(bind=connection, join_transaction_mode="create_savepoint")

    assert bind_of(factory) is connection
    turn = TurnTransaction(connection, factory)
    listener = store.open_listener(turn.connection, "nested")
    listener.set_attributes({"e": 5})
    turn.begin_writing()
    listener.write(turn.connection)
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
        listener = store.open_listener(transaction.connection, "counted")
        if write:
            listener.set_attributes({"n": 1})
            transaction.begin_writing()
            listener.write(transaction.connection)
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

"""db.raw answers exactly as SQLAlchemy's own execution does, on SQLite and MariaDB.

The turn's statements run on the driver's cursor (db/raw.py); if a SQLAlchemy upgrade changed
how it binds or processes results, these comparisons fail instead of a listener's turn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, event, select
from sqlalchemy.orm import Session

from db import raw, store
from db.models import Keyword, Listener, PlayHistory, ReviewStatus
from db.store import StoryDraft
from db.store.choosing import (
    _length_pick_statement,
    _longest_ago_statement,
    _pick_statement,
)
from db.store.listeners import (
    _FINISH_PLAY,
    _INSERT_PLAY,
    _OPEN_STATEMENT,
    _UPDATE_ATTRIBUTES,
    _upsert_listener,
    hash_listener_id,
)


def _stories(session: Session) -> tuple[dict[str, int], list[int]]:
    """Three approved stories, two sharing a pair of keywords: (lemma -> keyword id, story ids)."""
    stories = []
    for title, keywords in (
        ("The Kite", ("kite", "moon")),
        ("The Moon Boat", ("moon", "boat")),
        ("Kite Night", ("kite", "moon", "owl")),
    ):
        text = f"{title} flew gently. " * 40
        draft = StoryDraft(
            title=title,
            text=text,
            keywords=keywords,
            review_status=ReviewStatus.APPROVED.value,
        )
        stories.append(store.add_story(session, draft))
    session.flush()
    return {k.lemma: k.id for k in session.scalars(select(Keyword))}, [s.id for s in stories]


def _sqlalchemy(connection: Connection, statement: Any, values: dict[str, Any]) -> list[tuple]:
    return [tuple(row) for row in connection.execute(statement, values).all()]


def test_the_turn_reads_answer_as_sqlalchemy_does(db_session: Session) -> None:
    ids, stories = _stories(db_session)
    listener = "raw-listener"
    store.record_play(db_session, listener, stories[0], finished=False)
    store.save_listener_attributes(db_session, listener, {"bookmark": {"part": 2}, "name": "é"})
    connection = db_session.connection()
    key = hash_listener_id(listener)
    dialect = connection.dialect.name
    cases: list[tuple[Any, dict[str, Any]]] = [(_OPEN_STATEMENT, {"key": key})]
    base = {"locale": "en-US", "listener": key}
    for start in (0, 2**30, 2**31 - 1):
        for count, chosen in ((0, []), (1, ["owl"]), (2, ["kite", "moon"])):
            values = {**base, "start": start, "choice": 5}
            values.update({f"k{i}": ids[lemma] for i, lemma in enumerate(chosen)})
            cases.append((_pick_statement(count, 8, True, dialect), values))
            cases.append((_pick_statement(count, 8, False, dialect), values))
            if count:
                cases.append(
                    (_length_pick_statement(count, 8), {**values, "min_words": 0, "max_words": 99})
                )
                cases.append((_longest_ago_statement(count), values))
    answered = 0
    for statement, values in cases:
        expected = _sqlalchemy(connection, statement, values)
        got = raw.execute(connection, statement, values)
        assert got == expected, statement
        assert [type(v) for row in got for v in row] == [type(v) for row in expected for v in row]
        answered += bool(got)
    assert answered > len(cases) // 2  # most cases found rows: the comparison is not of empties
    # The listener row as the turn reads it: attributes decoded from JSON, the play's flag a bool.
    attributes, play_id, story_id, finished, count = raw.execute(
        connection, _OPEN_STATEMENT, {"key": key}
    )[0]
    assert attributes == {"bookmark": {"part": 2}, "name": "é"}
    assert (story_id, finished, count) == (stories[0], False, 1)
    assert isinstance(play_id, int)


def test_the_turn_writes_store_what_sqlalchemy_reads_back(db_session: Session) -> None:
    _, stories = _stories(db_session)
    connection = db_session.connection()
    key = hash_listener_id("raw-writer")
    now = datetime(2030, 1, 2, 3, 4, 5, 678000)
    upsert = _upsert_listener(connection.dialect.name)
    raw.execute(connection, upsert, {"key": key, "attributes": {"a": [1, "b"]}, "now": now})
    raw.execute(connection, upsert, {"key": key, "attributes": {"a": 2}, "now": now})  # conflict
    raw.execute(
        connection,
        _INSERT_PLAY,
        {"listener_key": key, "story_id": stories[1], "finished": False, "played_at": now},
    )
    play = db_session.scalars(select(PlayHistory).where(PlayHistory.listener_key == key)).one()
    raw.execute(connection, _FINISH_PLAY, {"play_id": play.id})
    raw.execute(
        connection, _UPDATE_ATTRIBUTES, {"listener_key": key, "attributes": {"z": None}, "now": now}
    )
    db_session.expire_all()
    row = db_session.get(Listener, key)
    assert row is not None and row.attributes == {"z": None} and row.updated_at == now
    play = db_session.scalars(select(PlayHistory).where(PlayHistory.listener_key == key)).one()
    assert (play.story_id, play.finished, play.played_at) == (stories[1], True, now)


def test_statement_listeners_see_raw_statements(db_session: Session) -> None:
    connection = db_session.connection()
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(connection.engine, "before_cursor_execute", before)
    try:
        raw.execute(connection, _OPEN_STATEMENT, {"key": "nobody"})
    finally:
        event.remove(connection.engine, "before_cursor_execute", before)
    assert len(seen) == 1 and "FROM listeners" in seen[0]


def test_expanding_parameters_are_left_to_sqlalchemy(db_session: Session) -> None:
    statement = select(Keyword.id).where(Keyword.lemma.in_(bindparam("lemmas", expanding=True)))
    with pytest.raises(ValueError, match="stay with SQLAlchemy"):
        raw.execute(db_session.connection(), statement, {"lemmas": ["kite"]})


def test_a_missing_value_is_an_error_not_a_null(db_session: Session) -> None:
    with pytest.raises(KeyError):
        raw.execute(db_session.connection(), _OPEN_STATEMENT, {})


def test_mariadb_writes_and_commit_in_one_batch(db_backend: str) -> None:
    """The turn's last writes and COMMIT in one round trip store exactly what statement-by-
    statement execution stores; a failing statement in the middle leaves nothing behind."""
    if db_backend != "mysql":
        pytest.skip("MariaDB only: SQLite has no round trips to save")
    from sqlalchemy.exc import IntegrityError

    from db.engine import make_engine, session_factory
    from db.models import Base
    from tests.conftest import create_mysql_database, drop_mysql_database

    url = create_mysql_database("bedtime_raw_batch")
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
        with session_factory(engine)() as session:
            _, stories = _stories(session)
            session.commit()
        now = datetime(2030, 1, 2, 3, 4, 5, 678000)
        upsert = _upsert_listener("mysql")
        key = hash_listener_id("batched")
        with engine.connect() as connection:
            assert raw.can_batch(connection)
            connection.begin()
            raw.execute_writes_and_commit(connection, [
                (upsert, {"key": key, "attributes": {"a": [1, "b'; DROP"]}, "now": now}),
                (_INSERT_PLAY, {"listener_key": key, "story_id": stories[0], "finished": True,
                                "played_at": now}),
            ])  # fmt: skip
            connection.commit()  # the batch committed: nothing left to send
        bad = hash_listener_id("refused")
        with engine.connect() as connection:
            connection.begin()
            with pytest.raises(IntegrityError):
                raw.execute_writes_and_commit(connection, [
                    (upsert, {"key": bad, "attributes": {}, "now": now}),
                    (_INSERT_PLAY, {"listener_key": bad, "story_id": 10**9, "finished": False,
                                    "played_at": now}),
                ])  # fmt: skip
            connection.rollback()
        with session_factory(engine)() as session:
            row = session.get(Listener, key)
            assert row is not None and row.attributes == {"a": [1, "b'; DROP"]}
            assert row.updated_at == now
            play = session.scalars(select(PlayHistory)).one()
            assert (play.listener_key, play.story_id, play.finished) == (key, stories[0], True)
            assert play.played_at == now
            assert session.get(Listener, bad) is None
    finally:
        engine.dispose()
        drop_mysql_database(url)


def test_sqlite_never_batches(db_session: Session, db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite only")
    assert not raw.can_batch(db_session.connection())

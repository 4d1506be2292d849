"""Engine construction and the one-line errors for unusable databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from db.engine import DatabaseUnavailable, check_database, make_engine, masked_url


def test_masked_url_hides_password() -> None:
    shown = masked_url("mysql+pymysql://bedtime:s3cret@db.example:3306/bedtime")
    assert "s3cret" not in shown and "***" in shown


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("mysql://root:pw@127.0.0.1/x", "mysql+pymysql://"),
        ("nosuchdb://x", "driver"),
        ("not a url", "not valid"),
    ],
)
def test_bad_urls_raise_with_a_fix(url: str, hint: str) -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        make_engine(url)
    message = str(info.value)
    assert hint in message
    assert "\n" not in message
    assert ":pw@" not in message


def test_refused_connection_names_url_without_password() -> None:
    engine = make_engine(
        "mysql+pymysql://bedtime:s3cret@127.0.0.1:1/bedtime", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(DatabaseUnavailable) as info:
        check_database(engine)
    message = str(info.value)
    assert "127.0.0.1:1" in message and "s3cret" not in message and "***" in message
    assert "\n" not in message


def test_sqlite_pragmas(db_engine: Engine, db_backend: str) -> None:
    if db_backend != "sqlite":
        with db_engine.connect() as connection:
            charset = connection.execute(text("SELECT @@character_set_connection")).scalar()
        assert charset == "utf8mb4"
        return
    with db_engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_sqlite_creates_missing_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'db.sqlite3'}")
    check_database(engine)
    assert (tmp_path / "a" / "b").is_dir()


def test_sqlite_readers_never_wait_for_the_writer_and_writers_queue(tmp_path: Path) -> None:
    """A turn's read phase takes no lock; a second writer waits for the first, then writes."""
    import threading
    import time

    from db.engine import begin_reading, begin_writing, session_factory
    from db.models import Base, Listener

    engine = make_engine(f"sqlite:///{tmp_path / 'locks.sqlite3'}")
    Base.metadata.create_all(engine)
    sessions = session_factory(engine)
    holder = engine.connect()
    holder.begin()  # BEGIN IMMEDIATE: the write lock
    holder.execute(
        text(
            "INSERT INTO listeners (key, attributes, created_at, updated_at) "
            "VALUES ('a', '{}', '2030-01-01', '2030-01-01')"
        )
    )
    with sessions() as reader:
        begin_reading(reader)
        started = time.monotonic()
        assert reader.connection().execute(text("SELECT COUNT(*) FROM listeners")).scalar() == 0
        assert time.monotonic() - started < 0.5  # not held up by the writer
    threading.Timer(0.2, holder.commit).start()
    with sessions() as writer:
        begin_reading(writer)
        started = time.monotonic()
        begin_writing(writer)  # waits for the holder's commit
        waited = time.monotonic() - started
        writer.add(Listener(key="b", attributes={}))
        writer.commit()
    holder.close()
    assert 0.1 < waited < 5
    with sessions() as check:
        assert sorted(check.scalars(text("SELECT key FROM listeners"))) == ["a", "b"]
    engine.dispose()


def test_mysql_replaces_a_pooled_connection_that_died_while_idle(
    db_engine: Engine, db_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping on every checkout; one after idling, so a dead connection never reaches a turn."""
    if db_backend != "mysql":
        pytest.skip("the idle ping is for MySQL/MariaDB; SQLite has no server to lose")
    import db.engine

    engine = make_engine(db_engine.url)
    with engine.connect() as connection:
        victim = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
    with db_engine.connect() as killer:
        killer.execute(text(f"KILL CONNECTION {int(victim)}"))
    monkeypatch.setattr(db.engine, "IDLE_PING_SECONDS", 0.0)
    with engine.connect() as connection:  # the pooled one is dead: pinged, replaced
        assert connection.execute(text("SELECT CONNECTION_ID()")).scalar() != victim
    engine.dispose()

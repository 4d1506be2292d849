"""WAL checkpoints off the request path: serving engines never checkpoint in a COMMIT, a
daemon thread does, and the log stops growing once it has."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from db.engine import make_engine
from db.wal_checkpoint import CHECKPOINTER, WalCheckpointer


def _autocheckpoint(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())


def _write_rows(engine, rows: int) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)"))
    for i in range(rows):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 2000 + str(i)})


def _wait_until(condition: Callable[[], bool], timeout_s: float = 10) -> bool:
    """Poll ``condition`` (the checkpointer's thread works on its own clock)."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_serving_engines_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "serve.sqlite3"
    serving = make_engine(f"sqlite:///{path}", checkpoint_in_background=True)
    batch = make_engine(f"sqlite:///{tmp_path / 'batch.sqlite3'}")
    try:
        assert _autocheckpoint(serving) == 0
        assert _autocheckpoint(batch) == 1000  # CLI and batch jobs keep SQLite's default
        assert str(path.resolve()) in CHECKPOINTER.registered()
    finally:
        serving.dispose()
        batch.dispose()


def test_in_memory_databases_are_not_registered() -> None:
    engine = make_engine("sqlite://", checkpoint_in_background=True)
    try:
        assert _autocheckpoint(engine) == 1000
        assert not any(":memory:" in p or p.endswith("/") for p in CHECKPOINTER.registered())
    finally:
        engine.dispose()


def test_a_written_log_is_checkpointed_and_a_quiet_one_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "grow.sqlite3"
    engine = make_engine(f"sqlite:///{path}", checkpoint_in_background=True)
    checkpointer = WalCheckpointer(interval_s=3600)
    try:
        _write_rows(engine, 40)  # ~80 KB of log, never checkpointed by a COMMIT
        assert checkpointer.checkpoint_if_written(str(path)) is True
        busy, frames, done = checkpointer.last_result or (1, 0, -1)
        assert busy == 0 and frames > 0 and done == frames
        assert checkpointer.checkpoint_if_written(str(path)) is False  # nothing new since
        _write_rows(engine, 60)  # the log is reused from its start: same size, new frames
        assert checkpointer.checkpoint_if_written(str(path)) is True
        assert checkpointer.last_result is not None and checkpointer.last_result[0] == 0
    finally:
        engine.dispose()


def test_the_thread_checkpoints_by_itself_and_forgets_deleted_files(tmp_path: Path) -> None:
    path = tmp_path / "thread.sqlite3"
    engine = make_engine(f"sqlite:///{path}", checkpoint_in_background=True)
    checkpointer = WalCheckpointer(interval_s=0.02)
    try:
        _write_rows(engine, 20)
        checkpointer.register(path)
        assert _wait_until(lambda: checkpointer.checkpoints >= 1)
        assert checkpointer.last_result is not None and checkpointer.last_result[0] == 0
    finally:
        engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert _wait_until(lambda: checkpointer.registered() == [])

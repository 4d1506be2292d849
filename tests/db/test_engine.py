"""Engine construction and the one-line errors for unusable databases."""

from __future__ import annotations

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

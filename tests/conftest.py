"""Shared database fixtures for every test package.

Backends: ``--db sqlite|mysql|all`` (default all). Any test using ``db_backend``/``db_engine``/
``db_session``/``store_session`` runs once per selected backend. The MySQL backend is a throw-away
database ``bedtime_test_<hex>`` on the server at BEDTIME_TEST_MYSQL_URL (default
``mysql+pymysql://root@127.0.0.1:3306``), dropped at the end of the run. When that server is
unreachable the MySQL tests are skipped with the reason, unless BEDTIME_REQUIRE_MYSQL=1 (CI),
which turns the skip into a failure.

Isolation: each test runs inside one outer transaction that is rolled back afterwards; sessions
join it with ``join_transaction_mode="create_savepoint"``, so code under test may call
``session.commit()`` freely (it only releases a savepoint).

Fixtures:
    db_session      a Session on the test's backend, rolled back after the test.
    store_session   a sessionmaker-like factory: ``store_session()`` -> Session on the same
                    rolled-back connection (for code that opens its own sessions, e.g. the
                    persistence adapter). Not thread-safe: one connection underneath.
    db_engine       the backend's Engine (session-scoped, schema created); commits through it
                    are NOT rolled back, clean up yourself.
    db_backend      "sqlite" or "mysql".
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

DEFAULT_MYSQL_SERVER = "mysql+pymysql://root@127.0.0.1:3306"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "mysql", "all"),
        default="all",
        help="database backend(s) for db fixtures (default: all; MySQL skips if unreachable)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" not in metafunc.fixturenames:
        return
    choice = metafunc.config.getoption("--db")
    backends = ["sqlite", "mysql"] if choice == "all" else [choice]
    metafunc.parametrize(
        "db_backend",
        [pytest.param(b, marks=[pytest.mark.mysql] if b == "mysql" else []) for b in backends],
        scope="session",
    )


def mysql_required() -> bool:
    return os.environ.get("BEDTIME_REQUIRE_MYSQL", "").strip().lower() in {"1", "true", "yes"}


def mysql_server_url() -> str:
    return os.environ.get("BEDTIME_TEST_MYSQL_URL", DEFAULT_MYSQL_SERVER).rstrip("/")


def create_mysql_database(prefix: str = "bedtime_test") -> str:
    """Create an empty utf8mb4 database on the test server; returns its URL (skip/fail if down)."""
    from db.engine import DatabaseUnavailable, check_database, make_engine

    server = make_engine(mysql_server_url(), connect_args={"connect_timeout": 3})
    try:
        check_database(server)
    except DatabaseUnavailable as exc:
        server.dispose()
        message = f"MySQL/MariaDB test server unavailable: {exc}"
        if mysql_required():
            pytest.fail(message + " (BEDTIME_REQUIRE_MYSQL=1)", pytrace=False)
        pytest.skip(message)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with server.connect() as connection:
        connection.execute(
            text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    server.dispose()
    return f"{mysql_server_url()}/{name}"


def drop_mysql_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    from db.engine import make_engine

    name = make_url(url).database
    server = make_engine(mysql_server_url())
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    server.dispose()


def _engine_with_schema(url: str) -> Engine:
    from db.engine import make_engine
    from db.models import Base

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    return engine


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A file SQLite database (not :memory:, so threads see the same data)."""
    path: Path = tmp_path_factory.mktemp("db") / "bedtime_test.sqlite3"
    engine = _engine_with_schema(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mysql_engine() -> Iterator[Engine]:
    url = create_mysql_database()
    engine = _engine_with_schema(url)
    yield engine
    engine.dispose()
    drop_mysql_database(url)


@pytest.fixture
def db_engine(request: pytest.FixtureRequest, db_backend: str) -> Engine:
    engine: Engine = request.getfixturevalue(f"{db_backend}_engine")
    return engine


@pytest.fixture
def store_session(db_engine: Engine) -> Iterator[Callable[[], Session]]:
    from db.models import StoreSession

    connection = db_engine.connect()
    outer = connection.begin()

    def factory() -> Session:
        return StoreSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    yield factory
    outer.rollback()
    connection.close()


@pytest.fixture
def db_session(store_session: Callable[[], Session]) -> Iterator[Session]:
    session = store_session()
    yield session
    session.close()

"""Engines, sessions and migrations: one place that knows SQLite from MySQL/MariaDB.

:func:`make_engine` applies the per-backend settings everything else relies on (utf8mb4 on MySQL;
foreign keys, WAL and working SAVEPOINTs on SQLite); :func:`check_database` turns "cannot connect"
into one actionable sentence instead of a driver traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
# Alembic announces every autogenerate plugin at INFO on each command; that is noise for us.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _migrations_dir() -> Path:
    """The ``migrations`` package folder, in a checkout or an installed wheel alike."""
    import migrations

    return Path(migrations.__file__).resolve().parent


class DatabaseUnavailable(RuntimeError):
    """The database URL is unusable or the server cannot be reached; the message says what to do."""


def masked_url(url: str | URL) -> str:
    """The URL with its password replaced by ***, safe for logs and error messages."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def _default_url() -> str:
    from settings import database_url

    return database_url()


#: Execution option for connections that only read (SQLite then skips the up-front write lock).
READ_ONLY_OPTION = "bedtime_read_only"


def _is_mysql(url: URL) -> bool:
    return url.get_backend_name() in {"mysql", "mariadb"}


def _install_sqlite_hooks(
    engine: Engine, in_memory: bool, *, background_checkpoints: bool = False
) -> None:
    """Foreign keys + WAL, and let SQLAlchemy (not pysqlite) emit BEGIN so SAVEPOINT works.

    pysqlite's legacy implicit transactions break SAVEPOINT (see SQLAlchemy's pysqlite docs,
    "Serializable isolation / Savepoints / Transactional DDL"); the recipe below is the fix.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # SQLite's own busy handler backs off to 25-100 ms sleeps, so a waiter wakes long after
        # a short write transaction ended; it waits at most 2 ms here (1 ms steps) and
        # _begin_immediate keeps retrying every millisecond up to SQLITE_LOCK_TIMEOUT.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_STEP_MS}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if background_checkpoints:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write transaction waits
        # (busy_timeout) instead of failing with "database is locked" on upgrade under load.
        # Connections marked READ_ONLY_OPTION (health checks, a turn's read phase) send no BEGIN:
        # in WAL mode each read then sees the latest commit and never takes or waits for a lock.
        if not connection.get_execution_options().get(READ_ONLY_OPTION, False):
            _begin_immediate(connection)


#: SQLite's busy handler waits this long per attempt (ms); the write lock this long in all (s).
SQLITE_BUSY_STEP_MS = 2
SQLITE_LOCK_TIMEOUT = 10.0


def _begin_immediate(connection: Any, run: Callable[[str], Any] | None = None) -> None:
    """BEGIN IMMEDIATE, retried every millisecond while another worker holds the write lock.

    ``run`` sends the statement (default: ``connection.exec_driver_sql``; a turn passes
    db/raw.py's driver-level runner)."""
    from sqlalchemy.exc import OperationalError

    send = run or connection.exec_driver_sql
    deadline = time.monotonic() + SQLITE_LOCK_TIMEOUT
    while True:
        try:
            send("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def _timeout_options(backend: str, timeout_s: float) -> dict[str, Any]:
    """Connect/read/write and pool-wait limits, so a hung server fails a call instead of a worker.

    A hung server costs a turn at most one timed-out read (or ping) plus one reconnect: about
    2 x timeout_s.
    """
    if backend == "sqlite":
        return {}  # a local file does not hang; busy_timeout already bounds lock waits
    return {
        "connect_args": {
            "connect_timeout": max(1, round(timeout_s)),
            "read_timeout": timeout_s,
            "write_timeout": timeout_s,
        },
        "pool_timeout": timeout_s,
    }


def make_engine(
    url: str | URL | None = None,
    *,
    timeout_s: float | None = None,
    checkpoint_in_background: bool = False,
    **kwargs: Any,
) -> Engine:
    """An Engine for ``url`` (default: settings' database_url) with our per-backend settings.

    ``timeout_s`` bounds every wait (connect, read, write, pool) for request-serving engines;
    batch jobs and migrations leave it None and wait as long as the server needs.
    ``checkpoint_in_background`` (SQLite files, serving engines): no COMMIT runs a WAL
    checkpoint; a daemon thread does (db/wal_checkpoint.py), so no request pays its fsync.

    Raises DatabaseUnavailable for a malformed URL or a missing driver (e.g. ``mysql://``
    without ``+pymysql``), with the fix in the message.
    """
    raw = url if url is not None else _default_url()
    try:
        parsed = raw if isinstance(raw, URL) else make_url(raw)
    except ArgumentError as exc:
        raise DatabaseUnavailable(
            f"Database URL {raw!r} is not valid: {exc}. Use e.g. "
            "sqlite:////path/bedtime.sqlite3 or mysql+pymysql://user:pass@host/bedtime"
        ) from None
    shown = masked_url(parsed)
    options: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        in_memory = database in {"", ":memory:"} or database.startswith("file::memory:")
        if not in_memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": SQLITE_BUSY_STEP_MS / 1000}
    elif _is_mysql(parsed):
        # A connection is used by one request at a time: a gunicorn sync worker needs one, a
        # threaded server a few; the overflow covers bursts without holding idle connections.
        options.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_recycle=3600)
        options["pool_reset_on_return"] = None  # _install_reset_on_return decides per checkin
        # Multi-statements let a turn send its writes and COMMIT in one round trip (db/raw.py's
        # execute_writes_and_commit); every statement we send is parameterised. FOUND_ROWS is
        # what SQLAlchemy's MySQL dialects set themselves (replacing client_flag drops it).
        options["connect_args"] = {"client_flag": _MYSQL_CLIENT_FLAGS}
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    if timeout_s is not None:
        limits = _timeout_options(backend, timeout_s)
        options["connect_args"] = {
            **options.get("connect_args", {}),
            **limits.pop("connect_args", {}),
        }
        options.update(limits)
    options.update(kwargs)
    try:
        engine = create_engine(parsed, **options)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        hint = (
            "use mysql+pymysql://user:password@host:3306/database"
            if _is_mysql(parsed)
            else "install the driver or pick a supported URL (sqlite:///..., mysql+pymysql://...)"
        )
        raise DatabaseUnavailable(
            f"Cannot use database {shown}: driver not available ({exc}); {hint}."
        ) from None
    except (ArgumentError, TypeError, ValueError) as exc:
        raise DatabaseUnavailable(f"Database URL {shown} is not valid: {exc}") from None
    if backend == "sqlite":
        background = checkpoint_in_background and not in_memory
        _install_sqlite_hooks(engine, in_memory, background_checkpoints=background)
        if background:
            from db.wal_checkpoint import CHECKPOINTER

            CHECKPOINTER.register(Path(database))
    else:
        if "pool_reset_on_return" not in kwargs:
            _install_reset_on_return(engine)
        if "pool_pre_ping" not in kwargs:
            _install_idle_ping(engine)
        _skip_commit_sent_in_batch(engine)
    return engine


#: CLIENT_FOUND_ROWS | CLIENT_MULTI_STATEMENTS (protocol capability bits, any MySQL driver).
_MYSQL_CLIENT_FLAGS = 2 | (1 << 16)
#: SERVER_STATUS_IN_TRANS: the server's own "a transaction is open on this connection".
_SERVER_IN_TRANSACTION = 1
#: Set on a DBAPI connection only while SQLAlchemy ends a transaction whose COMMIT already went
#: to the server inside a batch (db/raw.py, db/turn.py); see _skip_commit_sent_in_batch.
COMMIT_SENT = "_bedtime_commit_sent"


def _skip_commit_sent_in_batch(engine: Engine) -> None:
    """No second COMMIT round trip after a batch that carried its own (MySQL).

    A turn sends its writes and COMMIT in one message (db/raw.py), then ends SQLAlchemy's
    transaction as usual, inside :func:`db.turn.commit_already_sent`, which marks the DBAPI
    connection for exactly that call. The COMMIT is skipped only then, and only if the server's
    last reply (the batch's COMMIT) also said no transaction is open. The status alone is not
    enough: pymysql updates it from OK replies only, not after a result set (a SELECT, an
    INSERT ... RETURNING), so it can say "no transaction" while one is open.
    """
    dialect = engine.dialect
    commit = dialect.do_commit

    def do_commit(dbapi_connection: Any) -> None:
        if getattr(dbapi_connection, COMMIT_SENT, False):
            status = getattr(dbapi_connection, "server_status", None)
            if isinstance(status, int) and not status & _SERVER_IN_TRANSACTION:
                return
        commit(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]


#: Set in a pooled connection's ``record_info`` by a caller that has just committed or rolled
#: back on it itself (db/turn.py): the pool then skips its own ROLLBACK on checkin.
TRANSACTION_ENDED = "bedtime_transaction_ended"


def _install_reset_on_return(engine: Engine) -> None:
    """Roll back on checkin as SQLAlchemy would, except right after the caller's own COMMIT.

    SQLAlchemy sends a ROLLBACK whenever a connection returns to the pool unless its Connection
    still had a transaction to close, so a turn that commits pays one more round trip for a
    transaction that is already over (on MariaDB: one of a story turn's six).
    """

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: Any) -> None:
        info = record.record_info if record is not None else None
        if info is not None and info.pop(TRANSACTION_ENDED, False):
            return
        if state.asyncio_safe and not state.transaction_was_reset:
            dbapi_connection.rollback()


#: Connections kept per process (MySQL/MariaDB), and how many more a burst may open.
POOL_SIZE = 4
POOL_OVERFLOW = 8
#: A pooled connection idle longer than this is pinged before use (the server may have gone).
IDLE_PING_SECONDS = 30.0


def _install_idle_ping(engine: Engine) -> None:
    """Ping a pooled connection only when it sat idle, not on every checkout (pool_pre_ping).

    A connection checked in moments ago is alive; pinging it would add a round trip to every
    turn. One idle past IDLE_PING_SECONDS (a quiet night, a server restart) is pinged, and a
    dead one is replaced before the request sees it (SQLAlchemy's DisconnectionError recipe).
    """
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping(reconnect=False)
        except Exception as exc:  # the driver's "server has gone away", whichever it is
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def check_database(engine: Engine) -> None:
    """Connect once; raise DatabaseUnavailable with a one-line, password-free explanation."""
    shown = masked_url(engine.url)
    try:
        with engine.connect() as connection:
            connection.execution_options(**{READ_ONLY_OPTION: True}).execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        original = getattr(exc, "orig", None) or exc
        reason = " ".join(str(original).split())
        if engine.url.password:
            reason = reason.replace(str(engine.url.password), "***")
        if engine.dialect.name == "sqlite":
            fix = "check that the file's directory exists and is writable (BEDTIME_DATABASE_URL)"
        else:
            fix = (
                "check that the server is running and reachable, the user/password are right and "
                "the database exists (set BEDTIME_DATABASE_URL)"
            )
        raise DatabaseUnavailable(f"Cannot connect to database {shown}: {reason}; {fix}.") from None


_READ_PHASE = "bedtime_read_phase"
_WRITE_PHASE = "bedtime_write_phase"


def begin_reading(session: Session) -> None:
    """Start ``session`` in a read phase: on SQLite its reads take no lock (see begin_writing).

    Only for a session bound to an Engine (a test's session joined to an outer transaction is
    left as it is). MySQL/MariaDB need nothing: InnoDB's consistent reads take no locks, and the
    whole turn stays one transaction there.
    """
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite" and not session.in_transaction():
        session.connection(execution_options={READ_ONLY_OPTION: True})
        session.info[_READ_PHASE] = True


def begin_writing(session: Session) -> None:
    """End a read phase begun by :func:`begin_reading` and take SQLite's write lock now.

    A deferred SQLite transaction that read first cannot always upgrade to a writer (it fails
    at once with SQLITE_BUSY when another worker committed in between), so the read phase ran
    without a transaction (autocommit reads) and the writes run in a short ``BEGIN IMMEDIATE``
    transaction on the same connection, committed by the session. Idempotent.
    """
    if session.info.pop(_READ_PHASE, False):
        _begin_immediate(session.connection())
    session.info[_WRITE_PHASE] = True


def is_writing(session: Session) -> bool:
    """Whether :func:`begin_writing` was called: the session has work to commit."""
    return bool(session.info.get(_WRITE_PHASE)) or bool(
        session.new or session.dirty or session.deleted
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """StoreSessions (the story hooks run on flush) that keep loaded attributes after commit
    (views are built after committing)."""
    from db.models import StoreSession

    return sessionmaker(bind=engine, class_=StoreSession, expire_on_commit=False)


def alembic_config(engine: Engine | None = None) -> Any:
    """An Alembic Config pointing at our migrations; works from a source tree or an install."""
    from alembic.config import Config

    folder = _migrations_dir()
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
        config.attributes["engine"] = engine
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (alembic upgrade)."""
    from alembic import command

    log.info("upgrading %s to %s", masked_url(engine.url), revision)
    command.upgrade(alembic_config(engine), revision)


def downgrade_database(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (alembic downgrade; "base" drops everything)."""
    from alembic import command

    log.info("downgrading %s to %s", masked_url(engine.url), revision)
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class SchemaNotCurrent(RuntimeError):
    """The database was never upgraded, or is older than this code: every query would fail."""


def require_current_schema(engine: Engine, how: str = "Run `bedtime db upgrade` first.") -> None:
    """Refuse early, with the fix, rather than fail later on a missing table."""
    check_database(engine)
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no tables yet" if current is None else f"is at revision {current}"
        raise SchemaNotCurrent(
            f"The database {masked_url(engine.url)} {state}; this version needs {head}. {how}"
        )


def schema_differences(engine: Engine) -> list[Any]:
    """Autogenerate's diff between the database and the models ([] when they match)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from db.models import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": compare_type, "include_object": include_object},
        )
        return list(compare_metadata(context, Base.metadata))


def compare_type(
    _context: Any,
    _inspected_column: Any,
    _metadata_column: Any,
    inspected_type: Any,
    metadata_type: Any,
) -> bool | None:
    """Autogenerate type comparison that knows MariaDB stores JSON as LONGTEXT.

    Returns False (same) for JSON vs LONGTEXT, None to let Alembic's default decide otherwise.
    """
    from sqlalchemy import JSON
    from sqlalchemy.dialects.mysql import LONGTEXT

    if isinstance(metadata_type, JSON) and isinstance(inspected_type, (JSON, LONGTEXT)):
        return False
    return None


def include_object(
    _object: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any
) -> bool:
    """Everything is ours except Alembic's own version table."""
    return not (type_ == "table" and name == "alembic_version")

"""One request's database work: one connection, reads first, at most one short write, one commit.

Why not an ORM Session per request: a story turn's statements are few and run on the driver's
cursor (db/raw.py), and the Session's own transaction bookkeeping (connection lookups, commit
preparation) cost about a fifth of a SQLite turn. A :class:`TurnTransaction` holds one Core
connection and its transaction; an ORM Session on that same connection is made only when a rarer
path asks for one (queueing a request, a live story, resuming), and it joins the turn's
transaction rather than running its own, so everything still commits once, at the end.

SQLite: the read phase sends no BEGIN (in WAL mode each read sees the latest commit and takes no
lock); writing starts with ``BEGIN IMMEDIATE`` (retried while another worker holds the lock), so
the write lock is held only from the first write to the commit. MySQL/MariaDB: the turn is one
InnoDB transaction (consistent reads take no locks), and the writes handed to :meth:`finish` go
to the server together with their COMMIT in one round trip (db/raw.py): a story turn is three
round trips (read the listener, pick, write and commit) instead of five.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Transaction
from sqlalchemy.orm import Session, sessionmaker

from db import raw
from db.engine import (
    _READ_PHASE,
    _WRITE_PHASE,
    COMMIT_SENT,
    READ_ONLY_OPTION,
    TRANSACTION_ENDED,
    _begin_immediate,
    is_writing,
)

SessionFactory = Callable[[], Session]


def bind_of(factory: SessionFactory) -> Engine | Connection:
    """What a session factory's sessions are bound to (a test's factory may bind a Connection)."""
    if isinstance(factory, sessionmaker) and factory.kw.get("bind") is not None:
        return factory.kw["bind"]
    probe = factory()
    try:
        bind = probe.get_bind()
    finally:
        probe.close()
    if not isinstance(bind, Engine | Connection):
        raise TypeError(f"sessions of {factory!r} are bound to {bind!r}, not an engine")
    return bind


@contextmanager
def commit_already_sent(connection: Connection) -> Iterator[None]:
    """While SQLAlchemy ends a transaction whose COMMIT went to the server in a batch, its own
    COMMIT is not sent again (db.engine's commit hook reads this mark, for this call only)."""
    dbapi_connection = connection.connection.dbapi_connection
    setattr(dbapi_connection, COMMIT_SENT, True)
    try:
        yield
    finally:
        setattr(dbapi_connection, COMMIT_SENT, False)


class TurnTransaction:
    """A request's connection and transaction; see the module docstring."""

    def __init__(self, bind: Engine | Connection, factory: SessionFactory) -> None:
        self._factory = factory
        self._owns_connection = isinstance(bind, Engine)
        if isinstance(bind, Engine):
            connection = bind.connect()
            self._sqlite_phases = bind.dialect.name == "sqlite"
            if self._sqlite_phases:
                connection = connection.execution_options(**{READ_ONLY_OPTION: True})
            self._transaction: Transaction = connection.begin()
        else:  # a caller's connection, already in its own transaction: a savepoint within it
            connection = bind
            self._sqlite_phases = False
            self._transaction = (
                connection.begin_nested() if connection.in_transaction() else connection.begin()
            )
        self.connection = connection
        self._writing = False
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """An ORM Session on the turn's connection, joining its transaction (made on first use)."""
        if self._session is None:
            options = {"bind": self.connection, "join_transaction_mode": "rollback_only"}
            if isinstance(self._factory, sessionmaker):
                session = self._factory(**options)
            else:
                from db.models import StoreSession

                session = StoreSession(expire_on_commit=False, **options)  # type: ignore[arg-type]
            if self._sqlite_phases and not self._writing:
                session.info[_READ_PHASE] = True  # db.engine.begin_writing takes the lock
            self._session = session
        return self._session

    @property
    def writing(self) -> bool:
        """Whether the turn has begun writing (here or through its session)."""
        return self._writing or (self._session is not None and is_writing(self._session))

    def begin_writing(self) -> None:
        """Take SQLite's write lock now (idempotent); MySQL needs nothing."""
        if self._writing:
            return
        session = self._session
        if session is not None and session.info.get(_WRITE_PHASE):
            self._writing = True  # the session already took the lock
            return
        if self._sqlite_phases:
            _begin_immediate(self.connection, partial(raw.execute_sql, self.connection))
            if session is not None:
                session.info.pop(_READ_PHASE, None)
        self._writing = True

    def finish(self, writes: Sequence[raw.Write] = ()) -> None:
        """Run the turn's last ``writes`` and commit (nothing to commit: end it without a
        COMMIT); close. On MySQL/MariaDB the writes and their COMMIT go in one round trip."""
        try:
            if self._session is not None:
                if is_writing(self._session):
                    self.begin_writing()
                self._session.flush()
            if writes:
                self.begin_writing()
                if self._owns_connection and raw.can_batch(self.connection):
                    raw.execute_writes_and_commit(self.connection, writes)
                    with commit_already_sent(self.connection):
                        self._transaction.commit()
                    self._mark_ended()
                    return
                for statement, values in writes:
                    raw.execute(self.connection, statement, values)
            if self.writing:
                self._transaction.commit()
            else:
                self._transaction.rollback()
            self._mark_ended()
        finally:
            self._close()

    def abandon(self) -> None:
        """The turn failed: nothing it did is kept."""
        try:
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._close()

    def _mark_ended(self) -> None:
        """The transaction is over: the pool need not roll back again on checkin (MySQL)."""
        if self._owns_connection and not self.connection.invalidated:
            info = self.connection.connection.record_info
            if info is not None:
                info[TRANSACTION_ENDED] = True

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._owns_connection:
            self.connection.close()

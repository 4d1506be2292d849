"""The turn's hot statements, run on the driver's cursor below SQLAlchemy's execution layer.

Why: a story turn runs four or five small statements, and each pays SQLAlchemy's execution
context (compiled-cache lookup, parameter construction, result metadata) on top of the database
work: on SQLite that is about half of a turn's time (bench/bench_turn.py --profile). Here a Core
statement is compiled once per dialect, with the bind and result processors SQLAlchemy would
apply (JSON, DateTime, Boolean), and each execution is one ``cursor.execute`` plus those
processors. Transactions stay SQLAlchemy's: the statements run on the DBAPI connection under an
open :class:`~sqlalchemy.engine.Connection`, whose commit or rollback covers them.

Engine ``before_cursor_execute`` listeners are still called for every statement, so statement
counters (tests/skill/test_turn_statements.py, bench/bench_turn_statements.py) see these too.
tests/db/test_raw.py checks each statement answers exactly as SQLAlchemy's own execution does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any]
#: A statement to run and its values (a turn's last writes, db/turn.py).
Write = tuple[ClauseElement, Mapping[str, Any]]


class _Prepared:
    """One statement compiled for one dialect: SQL text, how to bind, how to read results."""

    __slots__ = ("_described", "bind", "defaults", "order", "required", "result", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("expanding and literal-execute parameters stay with SQLAlchemy")
        self.sql = compiled.string
        #: Positional dialects (SQLite's qmark): parameter names in placeholder order.
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if dialect.positional else None
        )
        self.defaults: dict[str, Any] = {}
        self.required: dict[str, str] = {}  # compiled name -> the key callers pass
        for bind, name in compiled.bind_names.items():
            if bind.required:
                self.required[name] = bind.key
            else:
                self.defaults[name] = bind.effective_value
        processors = compiled._bind_processors  # SQLAlchemy's own, for this dialect
        self.bind: tuple[tuple[str, Processor], ...] = tuple(processors.items())
        self.result: list[Processor | None] | None = None
        self._described = [column.type for column in getattr(compiled, "_result_columns", ())]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        bound = dict(self.defaults)
        for name, key in self.required.items():
            bound[name] = values[key]
        for name, process in self.bind:
            bound[name] = process(bound[name])
        if self.order is None:
            return bound
        return tuple(bound[name] for name in self.order)

    def processors(self, description: Any, dialect: Dialect) -> list[Processor | None]:
        """Result processors, from the cursor's first description (SQLAlchemy's own choice)."""
        if self.result is None:
            found: list[Processor | None] = []
            for index, type_ in enumerate(self._described):
                coltype = description[index][1] if description else None
                found.append(type_._cached_result_processor(dialect, coltype))
            self.result = found
        return self.result


#: (statement id, dialect) -> (the statement, kept alive so its id is never reused; prepared)
_PREPARED: dict[tuple[int, str], tuple[ClauseElement, _Prepared]] = {}


def _prepared(statement: ClauseElement, dialect: Dialect) -> _Prepared:
    key = (id(statement), dialect.name)
    found = _PREPARED.get(key)
    if found is None:
        found = _PREPARED[key] = (statement, _Prepared(statement, dialect))
    return found[1]


def execute(
    connection: Connection, statement: ClauseElement, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run ``statement`` (a module-level, never-rebuilt Core statement) with ``values``.

    Returns the rows (empty for INSERT/UPDATE), with SQLAlchemy's result processing.
    """
    dialect = connection.dialect
    prepared = _prepared(statement, dialect)
    parameters = prepared.parameters(values)
    rows, description = _run(connection, prepared.sql, parameters)
    if description is None:
        return []
    processors = prepared.processors(description, dialect)
    if not any(processors):
        return [tuple(row) for row in rows]
    return [
        tuple(
            value if process is None else process(value)
            for process, value in zip(processors, row, strict=False)
        )
        for row in rows
    ]


def execute_sql(connection: Connection, sql: str) -> None:
    """Run one parameterless statement (``BEGIN IMMEDIATE``) the same way."""
    _run(connection, sql, ())


def can_batch(connection: Connection) -> bool:
    """Whether several writes and their COMMIT can go in one round trip on this connection: a
    MySQL/MariaDB driver connection opened with multi-statements on (db.engine.make_engine)."""
    dbapi_connection = connection.connection.dbapi_connection
    flags = getattr(dbapi_connection, "client_flag", 0)
    return connection.dialect.name in {"mysql", "mariadb"} and bool(flags & MULTI_STATEMENTS)


#: The protocol's CLIENT_MULTI_STATEMENTS capability bit (the same in every MySQL driver).
MULTI_STATEMENTS = 1 << 16


def execute_writes_and_commit(connection: Connection, writes: Sequence[Write]) -> None:
    """Run ``writes`` (INSERT/UPDATE, no results) and COMMIT in one round trip (MySQL/MariaDB,
    :func:`can_batch`): a turn's end costs one network wait, not one per statement.

    The driver interpolates each statement's parameters with its own escaping (``mogrify``, what
    ``execute`` does), the server runs them in order and stops at the first error, which is
    raised here as SQLAlchemy's, with the transaction still open for the caller to roll back.
    The caller then ends its SQLAlchemy transaction inside :func:`db.turn.commit_already_sent`,
    so that db.engine's commit hook does not send a second COMMIT.
    """
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    sql = ""
    try:
        pieces = []
        for statement, values in writes:
            prepared = _prepared(statement, dialect)
            parameters = prepared.parameters(values)
            _before_execute(connection, cursor, prepared.sql, parameters)
            pieces.append(cursor.mogrify(prepared.sql, parameters))
        pieces.append("COMMIT")
        sql = ";\n".join(pieces)
        cursor.execute(sql)
        while cursor.nextset():  # each statement's result; an error surfaces here
            pass
    except dialect.loaded_dbapi.Error as exc:
        raise _wrapped(connection, exc, sql, (), cursor) from exc
    finally:
        with contextlib.suppress(Exception):
            cursor.close()


def _before_execute(connection: Connection, cursor: Any, sql: str, parameters: Any) -> None:
    if connection._has_events or connection.engine._has_events:
        for listener in connection.dispatch.before_cursor_execute:
            listener(connection, cursor, sql, parameters, None, False)


def _wrapped(connection: Connection, exc: Exception, sql: str, parameters: Any, cursor: Any) -> Any:
    """The driver's error as SQLAlchemy's (OperationalError, IntegrityError, ...); a dropped
    connection is invalidated, so the pool replaces it instead of handing it to the next request."""
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    dropped = dialect.is_disconnect(exc, dbapi_connection, cursor)
    if dropped:
        connection.invalidate(exc)
    return DBAPIError.instance(
        sql,
        parameters,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=dropped,
        dialect=dialect,
    )


def _run(connection: Connection, sql: str, parameters: Any) -> tuple[list[Any], Any]:
    """cursor.execute with SQLAlchemy's listeners and error handling (:func:`_wrapped`)."""
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        _before_execute(connection, cursor, sql, parameters)
        cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description is not None else []
    except dialect.loaded_dbapi.Error as exc:
        raise _wrapped(connection, exc, sql, parameters, cursor) from exc
    finally:
        with contextlib.suppress(Exception):  # never hide the statement's own error
            cursor.close()
    return rows, description

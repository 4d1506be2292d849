"""Counting what reaches the database: statements (BEGIN IMMEDIATE included) and COMMITs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event


class Counter:
    """Statements and commits reaching the database while it is active."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.commits = 0

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(" ".join(statement.split()))

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def __enter__(self) -> Counter:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)

    @property
    def writes(self) -> list[str]:
        verbs = {"INSERT", "UPDATE", "DELETE"}
        return [s for s in self.statements if s.split(None, 1)[0].upper() in verbs]


def messages_sent(monkeypatch: Any) -> list[str]:
    """Every message pymysql sends to the server from now on (each goes through
    ``_execute_command``): a round trip each, a multi-statement batch counting once."""
    import pymysql.connections

    sent: list[str] = []
    original = pymysql.connections.Connection._execute_command

    def counted(self: Any, command: int, sql: Any) -> Any:
        sent.append(sql if isinstance(sql, str) else sql.decode(errors="replace"))
        return original(self, command, sql)

    monkeypatch.setattr(pymysql.connections.Connection, "_execute_command", counted)
    return sent

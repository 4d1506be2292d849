"""Listeners: hashed ids, persistent attributes and play history, one read and one write a turn.

A skill turn opens a :class:`ListenerTurn` (one SELECT: attributes, last play, history size),
records what happened in memory, and writes it with :meth:`ListenerTurn.write` at the end: an
upsert of the listener row only when its attributes changed (or a play needs the row), one
INSERT per new play, and nothing at all for a turn that changed nothing. Play history is bounded
per listener (``history_limit``): past the limit plus a tenth, the oldest plays are trimmed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from db import raw
from db.models import (
    Listener,
    PlayHistory,
    _utcnow,
)

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

#: Plays kept per listener when the caller does not say (settings: BEDTIME_PLAY_HISTORY_LIMIT).
DEFAULT_HISTORY_LIMIT = 1000


def hash_listener_id(alexa_user_id: str) -> str:
    """sha256 hex of a raw user id: the only form in which listeners are stored."""
    return hashlib.sha256(alexa_user_id.encode("utf-8")).hexdigest()


def _listener_key(listener_id: str) -> str:
    return listener_id if _HEX64.match(listener_id) else hash_listener_id(listener_id)


_last_play_id = (
    select(PlayHistory.id)
    .where(PlayHistory.listener_key == Listener.key)
    .order_by(PlayHistory.played_at.desc(), PlayHistory.id.desc())
    .limit(1)
    .correlate(Listener)
    .scalar_subquery()
)
_play_count = (
    select(func.count())
    .select_from(PlayHistory)
    .where(PlayHistory.listener_key == Listener.key)
    .correlate(Listener)
    .scalar_subquery()
)
_last = aliased(PlayHistory, name="last_play")
#: The whole listener in one round trip: attributes, the last play (to finish it), history size.
_OPEN_STATEMENT = (
    select(Listener.attributes, _last.id, _last.story_id, _last.finished, _play_count)
    .outerjoin(_last, _last.id == _last_play_id)
    .where(Listener.key == bindparam("key"))
)
_UPDATE_ATTRIBUTES = (
    update(Listener)
    .where(Listener.key == bindparam("listener_key"))
    .values(attributes=bindparam("attributes"), updated_at=bindparam("now"))
)
_FINISH_PLAY = (
    update(PlayHistory).where(PlayHistory.id == bindparam("play_id")).values(finished=True)
)
_INSERT_PLAY = insert(PlayHistory).values(
    listener_key=bindparam("listener_key"),
    story_id=bindparam("story_id"),
    finished=bindparam("finished"),
    played_at=bindparam("played_at"),
)
_TRIM_CUTOFF = (
    select(PlayHistory.played_at, PlayHistory.id)
    .where(PlayHistory.listener_key == bindparam("listener_key"))
    .order_by(PlayHistory.played_at.desc(), PlayHistory.id.desc())
    .offset(bindparam("keep"))
    .limit(1)
)


@dataclass(frozen=True)
class LastPlay:
    id: int
    story_id: int
    finished: bool


@dataclass
class ListenerTurn:
    """One listener as read at the start of a turn, plus what the turn changed (not yet written)."""

    key: str
    attributes: dict[str, Any] = field(default_factory=dict)
    exists: bool = False
    last_play: LastPlay | None = None
    play_count: int = 0
    _new_attributes: dict[str, Any] | None = None
    _plays: list[list[Any]] = field(default_factory=list)  # [story_id, finished]
    _finish_play_id: int | None = None
    _also: list[raw.Write] = field(default_factory=list)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        """Replace the persistent attributes (written only if they differ from what was read)."""
        self._new_attributes = None if attributes == self.attributes else dict(attributes)

    def record_play(self, story_id: int, finished: bool = False) -> None:
        """Remember that the listener heard a story; finished=True completes the same play.

        Started and finished in one turn (a one-part story) is one finished row; finishing the
        play that was the last one before this turn updates that row; otherwise a finished play
        is a row of its own.
        """
        if finished:
            if self._plays and self._plays[-1][0] == story_id:
                self._plays[-1][1] = True
                return
            last = self.last_play
            if not self._plays and last and last.story_id == story_id and not last.finished:
                self._finish_play_id = last.id
                return
        self._plays.append([story_id, finished])

    def also_write(self, write: raw.Write) -> None:
        """Send one more statement with the turn's writes (the demand for a story we lacked):
        the same transaction and, on MariaDB, the same round trip as the plays."""
        self._also.append(write)

    @property
    def changed(self) -> bool:
        return bool(
            self._new_attributes is not None or self._plays or self._finish_play_id or self._also
        )

    def writes(
        self, dialect: str, history_limit: int = DEFAULT_HISTORY_LIMIT
    ) -> list[raw.Write] | None:
        """The statements :meth:`write` would run, for a caller that sends them together with
        its COMMIT (db/turn.py); None when the history is due a trim (that needs a read first).
        Call :meth:`written` once they are committed."""
        if self._trim_due(history_limit):
            return None
        return self._statements(dialect)

    def write(
        self, session: Session | Connection, history_limit: int = DEFAULT_HISTORY_LIMIT
    ) -> None:
        """Write what changed (nothing when nothing did); the caller commits."""
        if not self.changed:
            return
        connection = _connection(session)
        for statement, values in self._statements(connection.dialect.name):
            raw.execute(connection, statement, values)
        if self._trim_due(history_limit):
            _trim_history(connection, self.key, history_limit)
        self.written(history_limit)

    def _trim_due(self, history_limit: int) -> bool:
        """Past the limit plus a tenth, counting this turn's new plays: trim the oldest."""
        return self.play_count + len(self._plays) > history_limit + history_limit // 10

    def _statements(self, dialect: str) -> list[raw.Write]:
        if not self.changed:
            return []
        now = _utcnow()
        attributes = self._new_attributes
        out: list[raw.Write] = []
        if not self.exists:
            values = {"key": self.key, "attributes": attributes or self.attributes, "now": now}
            out.append((_upsert_listener(dialect), values))
        elif attributes is not None:
            values = {"listener_key": self.key, "attributes": attributes, "now": now}
            out.append((_UPDATE_ATTRIBUTES, values))
        if self._finish_play_id is not None:
            out.append((_FINISH_PLAY, {"play_id": self._finish_play_id}))
        for story, done in self._plays:
            values = {"listener_key": self.key, "story_id": story, "finished": done}
            out.append((_INSERT_PLAY, {**values, "played_at": now}))
        return out + self._also

    def written(self, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        """What was read at the start now includes what the turn wrote."""
        attributes = self._new_attributes
        count = self.play_count + len(self._plays)
        self.attributes = dict(attributes) if attributes is not None else self.attributes
        self.exists = True
        self.play_count = min(count, history_limit)
        self._new_attributes, self._plays, self._finish_play_id = None, [], None
        self._also = []


def open_listener(session: Session | Connection, listener_id: str) -> ListenerTurn:
    """The listener's attributes, last play and history size in one statement (new: empty)."""
    key = _listener_key(listener_id)
    rows = raw.execute(_connection(session), _OPEN_STATEMENT, {"key": key})
    if not rows:
        return ListenerTurn(key=key)
    row = rows[0]
    attributes, play_id, story_id, finished, count = row
    last = LastPlay(play_id, story_id, bool(finished)) if play_id is not None else None
    return ListenerTurn(
        key=key,
        attributes=dict(attributes or {}),
        exists=True,
        last_play=last,
        play_count=int(count or 0),
    )


def _connection(session: Session | Connection) -> Connection:
    """The Core connection under a Session: the hot path skips the ORM's execute machinery."""
    return session.connection() if isinstance(session, Session) else session


@functools.cache
def _upsert_listener(dialect: str) -> Any:
    """INSERT the listener row; a concurrent first turn of the same listener updates instead."""
    table = Listener.__table__
    values = {
        "key": bindparam("key"),
        "attributes": bindparam("attributes", type_=table.c.attributes.type),
        "created_at": bindparam("now", type_=table.c.created_at.type),
        "updated_at": bindparam("now", type_=table.c.updated_at.type),
    }
    if dialect in {"mysql", "mariadb"}:
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(table).values(values)
        return stmt.on_duplicate_key_update(
            attributes=stmt.inserted.attributes, updated_at=stmt.inserted.updated_at
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    stmt = sqlite_insert(table).values(values)
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"attributes": stmt.excluded.attributes, "updated_at": stmt.excluded.updated_at},
    )


def _trim_history(session: Session | Connection, key: str, keep: int) -> None:
    """Delete all but the listener's ``keep`` most recent plays."""
    cutoff = session.execute(_TRIM_CUTOFF, {"listener_key": key, "keep": keep}).first()
    if cutoff is None:
        return
    played_at, play_id = cutoff
    older = (PlayHistory.played_at < played_at) | (
        (PlayHistory.played_at == played_at) & (PlayHistory.id <= play_id)
    )
    session.execute(delete(PlayHistory).where(PlayHistory.listener_key == key, older))
    log.info("trimmed the play history of a listener to its %d most recent plays", keep)


def record_play(
    session: Session,
    listener_id: str,
    story_id: int,
    finished: bool = False,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
) -> None:
    """Remember that a listener heard a story; a later finished=True completes the same play.

    A turn of its own (read, record, write); the skill batches this in its turn instead.
    """
    turn = open_listener(session, listener_id)
    turn.record_play(story_id, finished)
    turn.write(session, history_limit)


def load_listener_attributes(session: Session, listener_key: str) -> dict[str, Any]:
    """The listener's persistent attributes ({} for a new listener); a copy, safe to mutate."""
    return open_listener(session, listener_key).attributes


def save_listener_attributes(session: Session, listener_key: str, attrs: dict[str, Any]) -> None:
    """Replace the listener's persistent attributes."""
    turn = open_listener(session, listener_key)
    turn.set_attributes(attrs)
    if not turn.exists:  # a new listener gets a row even with no attributes yet
        turn._new_attributes = dict(attrs)
    turn.write(session)


def delete_listener(session: Session, listener_key: str) -> None:
    """Forget a listener completely: attributes and play history."""
    key = _listener_key(listener_key)
    session.execute(delete(PlayHistory).where(PlayHistory.listener_key == key))
    session.execute(delete(Listener).where(Listener.key == key))
    session.expire_all()

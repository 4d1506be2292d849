"""What every console view needs: settings, a store session per request, the safety gate, speech.

Kept in ``app.extensions`` so tests can build the console on a rolled-back session and a stand-in
gate without globals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, g
from sqlalchemy.orm import Session

from db.store.reviews import Gate
from settings import Settings

EXTENSION = "bedtime_console"


@dataclass
class ConsoleContext:
    """Per-app dependencies of the console and the API."""

    settings: Settings
    session_factory: Callable[[], Session]
    # The safety gate for creates and approvals; None means safety's own (loads MiniLM lazily).
    gate: Gate | None = None


def context() -> ConsoleContext:
    ctx: ConsoleContext = current_app.extensions[EXTENSION]
    return ctx


def store() -> Session:
    """The store session of this request, opened on first use, closed at teardown."""
    if "bedtime_store" not in g:
        g.bedtime_store = context().session_factory()
    session: Session = g.bedtime_store
    return session


def close_store(_exc: BaseException | None = None) -> None:
    session = g.pop("bedtime_store", None)
    if session is not None:
        session.close()

"""The console and API on each database backend, with a stand-in safety gate (no MiniLM load).

``console_app`` is the real app factory (``skill.webapp.create_app``) with BEDTIME_CONSOLE on,
running on the test's rolled-back connection. ``operator``/``token`` make accounts through the
store, ``login`` logs a test client in through the login form (CSRF token and all).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from safety.gate import SafetyVerdict
from settings import Settings

SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def stand_in_gate(stories: Sequence[tuple[str, str]]) -> list[SafetyVerdict]:
    """Flags any story mentioning a monster, passes the rest (safety/ tests the real gate)."""
    return [
        SafetyVerdict(ok=False, matches=(("scary", "monster"),), checker="stand-in")
        if "monster" in f"{title} {text}".lower()
        else SafetyVerdict(ok=True, checker="stand-in")
        for title, text in stories
    ]


def console_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": "sqlite://",
        "verify_requests": False,
        "console_enabled": True,
        "secret_key": SECRET,
        "console_secure_cookies": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def console_app(
    db_engine: Engine, store_session: Callable[[], Session], tmp_path: Any
) -> Iterator[Flask]:
    from skill.services import SkillServices
    from skill.webapp import create_app

    settings = console_settings(models_dir=str(tmp_path / "models"), model_upload_max_mb=1.0)
    services = SkillServices(settings=settings, engine=db_engine, session_factory=store_session)
    app = create_app(services=services)
    app.config["TESTING"] = True
    app.extensions["bedtime_console"].gate = stand_in_gate
    yield app


@pytest.fixture
def make_operator(db_session: Session) -> Callable[..., Any]:
    from console.auth import hash_password
    from db.store import operators

    def make(name: str = "olivia", role: str = "admin") -> Any:
        operator = operators.add_operator(db_session, name, hash_password(PASSWORD), role)
        db_session.commit()
        return operator

    return make


@pytest.fixture
def make_token(db_session: Session, make_operator: Callable[..., Any]) -> Callable[..., str]:
    from db.store import operators

    def make(*scopes: str, name: str = "script", role: str = "admin") -> str:
        operator = operators.find_operator(db_session, name) or make_operator(name, role)
        issued = operators.issue_token(db_session, operator, "test", set(scopes))
        db_session.commit()
        return issued.secret

    return make


def csrf_token_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: FlaskClient, name: str = "olivia", password: str = PASSWORD) -> Any:
    page = client.get("/console/login")
    token = csrf_token_of(page.get_data(as_text=True))
    return client.post(
        "/console/login", data={"name": name, "password": password, "csrf_token": token}
    )


def add_story(session: Session, title: str, text: str, keywords: Sequence[str], **extra: Any):
    from db.store import StoryDraft, add_story

    story = add_story(session, StoryDraft(title=title, text=text, keywords=list(keywords), **extra))
    session.commit()
    return story

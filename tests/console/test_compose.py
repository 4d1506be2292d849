"""docker-compose.yml: web + MariaDB (with a volume) + a one-shot generation job, wired by
BEDTIME_* variables that settings/ really reads. ``docker compose config`` validates it where the
compose client is installed; the structure is checked everywhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from settings import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {
    "BEDTIME_DB_PASSWORD": "pw-for-tests",
    "BEDTIME_DB_ROOT_PASSWORD": "root-pw-for-tests",
    "BEDTIME_SECRET_KEY": "k" * 40,
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_services_volumes_and_wiring() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "web", "generate"}
    assert services["db"]["image"].startswith("mariadb:")
    assert "mariadb-data:/var/lib/mysql" in services["db"]["volumes"]
    web, job = services["web"], services["generate"]
    assert web["environment"]["BEDTIME_CONSOLE"] == "true"
    assert "@db:3306/bedtime" in web["environment"]["BEDTIME_DATABASE_URL"]
    assert web["environment"]["BEDTIME_DATABASE_URL"] == job["environment"]["BEDTIME_DATABASE_URL"]
    assert web["depends_on"]["db"]["condition"] == "service_healthy"
    assert job["restart"] == "no" and job["profiles"] == ["jobs"]
    assert job["build"]["dockerfile"] == "docker/generator.Dockerfile"
    assert (ROOT / job["build"]["dockerfile"]).is_file()
    for service in (web, job):
        for name in service["environment"]:
            assert name in VARIABLES, f"{name} is not read by settings/"


@pytest.mark.skipif(
    shutil.which("hadolint") is None and not (Path(sys.executable).parent / "hadolint").exists(),
    reason="hadolint not installed",
)
def test_generator_image_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "docker" / "generator.Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _compose_client() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _compose_client(), reason="the docker compose client is not installed")
def test_docker_compose_config_accepts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pw-for-tests@db:3306" in done.stdout
    missing = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert missing.returncode != 0 and "BEDTIME_DB_PASSWORD" in missing.stderr

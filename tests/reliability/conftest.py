"""Fixtures for the reliability suite: a skill app over a throwaway store, a private MariaDB.

The fault tests kill, stop and restart a database server, so they never touch the shared one
on 127.0.0.1:3306: :class:`PrivateMariaDB` installs its own data directory in a temp folder and
listens on a free port.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from db.catalogue import load_starter_catalogue
from db.engine import make_engine, session_factory, upgrade_database
from settings import Settings
from skill.services import SkillServices

FIXTURE_STORIES = Path(__file__).resolve().parents[1] / "fixtures" / "handwritten_stories.jsonl"
SKILL_ID = "amzn1.ask.skill.00000000-0000-0000-0000-000000000001"
MARIADBD = shutil.which("mariadbd", path="/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin")
INSTALL_DB = shutil.which("mariadb-install-db", path="/usr/bin:/usr/local/bin:/usr/sbin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed_store(url: str) -> None:
    """Schema plus our hand-written fixture stories."""
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        with session_factory(engine)() as session:
            load_starter_catalogue(session, FIXTURE_STORIES)
            session.commit()
    finally:
        engine.dispose()


def skill_services(url: str, *, verify: bool, db_timeout: float = 1.0) -> SkillServices:
    settings = Settings(
        database_url=url, skill_id=SKILL_ID, verify_requests=verify, db_timeout_seconds=db_timeout
    )
    services = SkillServices.from_settings(settings)
    services.rng = random.Random(7)
    return services


class PrivateMariaDB:
    """A MariaDB server of our own: install, start, kill -9, SIGSTOP/SIGCONT, restart, remove."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.datadir = root / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "server.log"

    @property
    def server_url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}"

    def install(self) -> None:
        subprocess.run(
            [
                str(INSTALL_DB),
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, timeout: float = 60.0) -> float:
        """Start the server; returns the seconds until it answered."""
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(MARIADBD),
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--socket={self.root / 'mysqld.sock'}",
                    f"--pid-file={self.root / 'mysqld.pid'}",
                    "--user=root",
                    "--skip-log-bin",
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=32M",
                    "--innodb-log-file-size=16M",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                engine = make_engine(self.server_url, connect_args={"connect_timeout": 2})
                try:
                    with engine.connect() as connection:
                        connection.execute(text("SELECT 1"))
                    return time.monotonic() - started
                finally:
                    engine.dispose()
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not answer in {timeout:.0f}s")

    def kill(self) -> None:
        """kill -9: no shutdown, no flush; InnoDB recovers on the next start."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def create_database(self, name: str) -> str:
        engine = make_engine(self.server_url)
        try:
            with engine.connect() as connection:
                connection.execute(
                    text(
                        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                )
        finally:
            engine.dispose()
        return f"{self.server_url}/{name}"


@pytest.fixture(scope="module")
def private_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMariaDB]:
    if MARIADBD is None or INSTALL_DB is None:
        message = "mariadbd / mariadb-install-db are not installed"
        if os.environ.get("BEDTIME_REQUIRE_MYSQL", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    server = PrivateMariaDB(tmp_path_factory.mktemp("mariadb"))
    server.install()
    server.start()
    try:
        yield server
    finally:
        server.stop()

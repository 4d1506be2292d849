"""End-to-end voice tests: the real web service driven by Alexa simulators through our model.

For each database (a temp SQLite file, and a throwaway MariaDB/MySQL database) this starts the
real Flask app under gunicorn (``skill.webapp:create_app()``, request verification off because the
simulators do not sign), seeded with the starter catalogue plus ``fixtures/e2e_stories.jsonl``,
then runs in subprocesses:

* ``node --test virtual-alexa/*.test.js``: npm ``virtual-alexa`` suites (the dialogs, every
  locale, and every sample utterance reaching its own intent);
* ``bst test``: the bespoken-tools YAML suite in ``bst/`` (``BESPOKEN_API_BASE_URL`` points at a
  local stub so publishing results works offline).

Needs ``npm ci`` in tests/e2e. Without node_modules the tests skip, unless BEDTIME_REQUIRE_E2E=1
(CI), which turns the skip into a failure. The MySQL variant skips when the server is unreachable
unless BEDTIME_REQUIRE_MYSQL=1; BEDTIME_TEST_MYSQL_URL overrides mysql+pymysql://root@127.0.0.1:3306
(the server only: a database ``bedtime_e2e_<hex>`` is created there and dropped afterwards).
``--db sqlite|mysql`` (tests/conftest.py) selects one backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

E2E_DIR = Path(__file__).resolve().parent
ROOT = E2E_DIR.parent.parent
NODE_MODULES = E2E_DIR / "node_modules"
FIXTURE_STORIES = E2E_DIR / "fixtures" / "e2e_stories.jsonl"
# Our own short stories: the dialogs assert on their titles, and the shipped (generated)
# catalogue changes whenever the model is retrained.
HANDWRITTEN_STORIES = E2E_DIR.parent / "fixtures" / "handwritten_stories.jsonl"
SKILL_ID = "amzn1.ask.skill.00000000-0000-4000-8000-0000bed71me5"
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306"
SERVER_START_TIMEOUT = 60
NODE_SUITE_TIMEOUT = 420
BST_SUITE_TIMEOUT = 420
# Fewer than this many passing tests means a suite was silently not collected.
MIN_VIRTUAL_ALEXA_TESTS = 90
VIRTUAL_ALEXA_SUITES = (
    "virtual-alexa/conversation.test.js",
    "virtual-alexa/bedtime.test.js",
    "virtual-alexa/locales.test.js",
    "virtual-alexa/model.test.js",
)
MIN_BST_TESTS = 8
#: Where the simulated Alexa is told to stream sleep sounds from (virtual-alexa wants HTTPS).
PUBLIC_URL = "https://bedtime-e2e.example.com"

pytestmark = pytest.mark.slow


def _skip_or_fail(reason: str, require_env: str = "BEDTIME_REQUIRE_E2E") -> None:
    if os.environ.get(require_env, "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} ({require_env}=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """Path of node, with the e2e npm packages installed."""
    node_path = shutil.which("node")
    if node_path is None:
        _skip_or_fail("node is not installed")
    for package in ("virtual-alexa", "bespoken-tools", "ask-smapi-model"):
        if not (NODE_MODULES / package / "package.json").exists():
            _skip_or_fail(f"{package} missing: run `npm ci` in {E2E_DIR}")
    return node_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def database_url(request, tmp_path_factory, node) -> Iterator[str]:
    """A fresh database with the schema, the starter catalogue and the e2e fixture stories."""
    chosen = request.config.getoption("--db", default="all")
    if chosen not in ("all", request.param):
        pytest.skip(f"{request.param} not selected by --db {chosen}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'bedtime.sqlite3'}"
        _seed(url)
        yield url
        return
    yield from _throwaway_mysql_database()


def _throwaway_mysql_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    base = os.environ.get("BEDTIME_TEST_MYSQL_URL", DEFAULT_MYSQL_URL).rstrip("/")
    name = f"bedtime_e2e_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, pool_pre_ping=True, connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(
                text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            )
    except OperationalError as exc:
        admin.dispose()
        _skip_or_fail(
            f"MySQL/MariaDB at {base} is unreachable: {exc.orig}", "BEDTIME_REQUIRE_MYSQL"
        )
    try:
        url = f"{base}/{name}?charset=utf8mb4"
        _seed(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def _seed(url: str) -> None:
    from db.catalogue import load_starter_catalogue
    from db.engine import make_engine, session_factory, upgrade_database

    engine = make_engine(url)
    try:
        upgrade_database(engine)
        with session_factory(engine)() as session:
            assert load_starter_catalogue(session, HANDWRITTEN_STORIES) == 8
            assert load_starter_catalogue(session, FIXTURE_STORIES) == 1
            session.commit()
    finally:
        engine.dispose()


@dataclass(frozen=True)
class SkillServer:
    url: str
    log_path: Path

    def log_tail(self) -> str:
        return f"--- server log ---\n{_tail(self.log_path, 80)}"


@contextlib.contextmanager
def _running_server(
    database_url: str, log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[SkillServer]:
    """The web service under gunicorn on a free port, as the Dockerfile runs it."""
    port = _free_port()
    log_path = log_dir / "server.log"
    env = {
        **os.environ,
        "BEDTIME_DATABASE_URL": database_url,
        "BEDTIME_VERIFY_REQUESTS": "false",
        "BEDTIME_SKILL_ID": SKILL_ID,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("BEDTIME_LIVE_MODEL", None)
    env.update(extra_env or {})
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "--timeout",
        "60",
        "--no-control-socket",
        "skill.webapp:create_app()",
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", server, log_path)
        yield SkillServer(f"http://127.0.0.1:{port}/alexa", log_path)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


@pytest.fixture(scope="session")
def sounds_dir(tmp_path_factory) -> Path | None:
    """Sleep sounds built with sox, as at build time; None (sound dialogs skipped) without sox."""
    from skill.sleep_sounds import SoundBuildError, build_sounds

    folder = tmp_path_factory.mktemp("e2e-sounds")
    try:
        build_sounds(folder)
    except SoundBuildError as exc:
        print(f"sleep-sound dialogs skipped: {exc}")
        return None
    return folder


@pytest.fixture(scope="module")
def skill_server(database_url, tmp_path_factory, sounds_dir) -> Iterator[SkillServer]:
    """Start the web service on a free port; its POST /alexa URL and log."""
    extra = {"BEDTIME_PUBLIC_URL": PUBLIC_URL}
    if sounds_dir is not None:
        extra["BEDTIME_SOUNDS_DIR"] = str(sounds_dir)
    log_dir = tmp_path_factory.mktemp("e2e-server")
    with _running_server(database_url, log_dir, extra) as server:
        yield server


def _wait_healthy(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited with {server.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"server not healthy after {SERVER_START_TIMEOUT}s:\n{_tail(log_path)}")


def _wait_live_ready(server: SkillServer, timeout_s: float = 180.0) -> None:
    """The live model loads in the background (torch, the model, the safety check's encoder):
    wait for /healthz to say it is ready, so the test measures a story, not a cold start."""
    health = server.url.rsplit("/", 1)[0] + "/healthz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if json.loads(response.read()).get("live") == "ready":
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    pytest.fail(f"live model not ready after {timeout_s:.0f}s\n{server.log_tail()}")


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class _StubHandler(BaseHTTPRequestHandler):
    """Answers bst's POST /reporting/testResults (normally sent to Bespoken's cloud)."""

    hits: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.hits.append(self.path)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def bespoken_stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: int) -> tuple[int, str]:
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace")
        pytest.fail(f"{command[:3]} timed out after {timeout}s:\n{output[-8000:]}")
    return completed.returncode, completed.stdout.decode(errors="replace")


def test_virtual_alexa_suites(node, skill_server, sounds_dir):
    env = {
        **os.environ,
        "BEDTIME_SKILL_URL": skill_server.url,
        "BEDTIME_SKILL_ID": SKILL_ID,
        "BEDTIME_E2E_PUBLIC_URL": PUBLIC_URL,
        "BEDTIME_E2E_SOUNDS": "1" if sounds_dir is not None else "0",
        "NODE_ENV": "test",
    }
    code, output = _run(
        [node, "--test", "--test-concurrency=1", "--test-reporter=tap", *VIRTUAL_ALEXA_SUITES],
        cwd=E2E_DIR,
        env=env,
        timeout=NODE_SUITE_TIMEOUT,
    )
    counts = {
        key: int(value)
        for key, value in re.findall(r"^# (pass|fail|tests) (\d+)$", output, re.MULTILINE)
    }
    print(output[-4000:])
    assert code == 0 and counts.get("fail") == 0, output[-12000:] + skill_server.log_tail()
    assert counts.get("pass", 0) >= MIN_VIRTUAL_ALEXA_TESTS, output[-4000:]


def test_bst_yaml_suite(node, skill_server, bespoken_stub, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "BEDTIME_SKILL_URL": skill_server.url,
        "BEDTIME_SKILL_ID": SKILL_ID,
        "BEDTIME_E2E_RUN": uuid.uuid4().hex,
        "BESPOKEN_API_BASE_URL": bespoken_stub,
        "SKIP_STATISTICS": "true",
        "CI": "true",
        "FORCE_COLOR": "0",
    }
    bst = NODE_MODULES / ".bin" / "bst"
    code, output = _run(
        [node, str(bst), "test", "--config", str(E2E_DIR / "bst" / "testing.json")],
        cwd=tmp_path,
        env=env,
        timeout=BST_SUITE_TIMEOUT,
    )
    print(output[-4000:])
    summary = re.search(
        r"Tests:\s+(?:(\d+) failed, )?(?:(\d+) skipped, )?(\d+) passed, (\d+) total", output
    )
    assert code == 0, output[-12000:] + skill_server.log_tail()
    assert summary is not None and summary.group(1) is None, output[-12000:]
    assert int(summary.group(3)) >= MIN_BST_TESTS, output[-4000:]
    assert _StubHandler.hits, "bst did not publish its results to the local stub"


SAFETY_SUITE = "virtual-alexa/safety.test.js"
#: The words safety.test.js asks for; none may be queued (lemmas as the store would keep them).
REDIRECTED_WORDS = {
    "gun",
    "poopy",
    "vape",
    "handgun",
    "fart",
    "farting",
    "idiot",
    "kiss",
    "kissing",
}


def test_redirected_words_get_no_promise_and_no_queued_request(node, skill_server, database_url):
    """The request policy end to end: a kind redirect through the simulator, and the queue is
    untouched (the suite also checks that nothing is promised)."""
    from sqlalchemy import create_engine, text

    env = {**os.environ, "BEDTIME_SKILL_URL": skill_server.url, "BEDTIME_SKILL_ID": SKILL_ID}
    code, output = _run(
        [node, "--test", "--test-reporter=tap", SAFETY_SUITE],
        cwd=E2E_DIR,
        env=env,
        timeout=NODE_SUITE_TIMEOUT,
    )
    print(output[-4000:])
    assert code == 0, output[-8000:] + skill_server.log_tail()
    assert re.search(r"^# pass (9|[1-9]\d)", output, re.MULTILINE), output[-4000:]
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            queued = [
                json.loads(k) if isinstance(k, str) else k
                for (k,) in conn.execute(text("SELECT keywords FROM generation_requests"))
            ]
    finally:
        engine.dispose()
    asked = {word for keywords in queued for word in keywords}
    assert not asked & REDIRECTED_WORDS, queued


def test_fixture_story_is_valid_jsonl():
    records = [json.loads(line) for line in FIXTURE_STORIES.read_text().splitlines() if line]
    assert [r["keywords"] for r in records] == [["rocket", "star"]]


SHIPPED_MODEL = ROOT / "generator" / "shipped_model"
LIVE_SUITE = "virtual-alexa/live.test.js"


def test_make_up_a_new_story_live_within_the_deadline(node, tmp_path):
    """ "make up a new story about a kite" with the shipped model, through the simulator."""
    for module in ("torch", "transformers", "ctranslate2"):
        pytest.importorskip(module, reason="live generation needs pip install -e '.[generator]'")
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    _seed(url)
    live_env = {"BEDTIME_LIVE_MODEL": str(SHIPPED_MODEL), "BEDTIME_LIVE_DEADLINE_SECONDS": "6"}
    with _running_server(url, tmp_path, live_env) as server:
        _wait_live_ready(server)
        env = {**os.environ, "BEDTIME_SKILL_URL": server.url, "BEDTIME_SKILL_ID": SKILL_ID}
        code, output = _run(
            [node, "--test", "--test-reporter=tap", LIVE_SUITE],
            cwd=E2E_DIR,
            env=env,
            timeout=NODE_SUITE_TIMEOUT,
        )
        print(output[-4000:])
        assert code == 0, output[-8000:] + server.log_tail()
    assert re.search(r"^# pass [1-9]", output, re.MULTILINE), output[-4000:]

"""The endpoint while its database is killed, restarted and hung, under bounded load.

A private MariaDB (never the shared one) is killed with SIGKILL and restarted twice, then frozen
with SIGSTOP, while two threads keep talking to the skill. Guarantees: no 5xx ever; during an
outage every turn is the spoken apology within 3 s and "stop" still ends the session; after the
server is back at most one turn per restart fails; /healthz says only "unavailable".
The figures are printed (``pytest -s``) for the README.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from skill.webapp import create_app
from tests.reliability.conftest import PrivateMariaDB, seed_store, skill_services
from tests.reliability.test_fuzz_alexa import envelope

pytestmark = pytest.mark.mysql

APOLOGY_MARKERS = ("went wrong", "isn't working")
ANSWER_BUDGET_S = 3.0
THREADS = 2
PAUSE_BETWEEN_TURNS_S = 0.05
TURNS = [
    {"type": "LaunchRequest"},
    {
        "type": "IntentRequest",
        "intent": {
            "name": "TellStoryIntent",
            "slots": {"keyword": {"name": "keyword", "value": "dragons"}},
        },
    },
    {"type": "IntentRequest", "intent": {"name": "AMAZON.NextIntent"}},
]


@dataclass
class Turn:
    started: float
    seconds: float
    status: int
    failed: bool


@dataclass
class Load:
    """Two threads sending turns until stopped; every answer recorded."""

    app: Flask
    turns: list[Turn] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, index: int) -> None:
        client = self.app.test_client()
        step = index
        while not self.stop.is_set():
            body = json.dumps(envelope(TURNS[step % len(TURNS)]))
            step += 1
            started = time.monotonic()
            reply = client.post("/alexa", data=body, content_type="application/json")
            seconds = time.monotonic() - started
            text = reply.get_data(as_text=True)
            failed = reply.status_code != 200 or any(m in text for m in APOLOGY_MARKERS)
            with self.lock:
                self.turns.append(Turn(started, seconds, reply.status_code, failed))
            time.sleep(PAUSE_BETWEEN_TURNS_S)

    def between(self, start: float, end: float) -> list[Turn]:
        with self.lock:
            return [t for t in self.turns if start <= t.started < end]


@pytest.fixture(scope="module")
def app(private_mariadb: PrivateMariaDB) -> Flask:
    url = private_mariadb.create_database("bedtime_faults")
    seed_store(url)
    return create_app(services=skill_services(url, verify=False, db_timeout=1.0))


@pytest.fixture
def load(app: Flask) -> Iterator[Load]:
    running = Load(app)
    threads = [threading.Thread(target=running._run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        for thread in threads:
            thread.join(timeout=30)


def _say(app: Flask, request: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    reply = app.test_client().post(
        "/alexa", data=json.dumps(envelope(request)), content_type="application/json"
    )
    return reply.status_code, reply.get_json(), time.monotonic() - started


def test_kill_and_restart_under_load(
    app: Flask, private_mariadb: PrivateMariaDB, load: Load
) -> None:
    time.sleep(1.0)
    assert load.turns and not any(t.failed for t in load.turns), "healthy warm-up failed"
    report: list[str] = []
    for restart in range(2):
        private_mariadb.kill()
        down_at = time.monotonic()
        time.sleep(1.0)
        status, out, _seconds = _say(
            app, {"type": "IntentRequest", "intent": {"name": "AMAZON.StopIntent"}}
        )
        assert status == 200 and out["response"]["shouldEndSession"] is True, out
        health = app.test_client().get("/healthz")
        assert health.status_code == 503 and health.get_json() == {"status": "unavailable"}
        restarting_at = time.monotonic()
        restart_s = private_mariadb.start()
        up_at = time.monotonic()
        time.sleep(2.0)
        outage = load.between(down_at, restarting_at)  # the server was surely down
        after = load.between(up_at, time.monotonic())
        assert outage and all(t.failed and t.status == 200 for t in outage)
        assert max(t.seconds for t in outage) < ANSWER_BUDGET_S
        failed_after = sum(t.failed for t in after)
        assert failed_after <= 1, f"restart {restart}: {failed_after} failed turns after recovery"
        assert len(after) > 10
        report.append(
            f"restart {restart + 1}: server back in {restart_s:.1f}s; {len(outage)} outage turns "
            f"all apologies (slowest {max(t.seconds for t in outage):.2f}s); {failed_after} of "
            f"{len(after)} turns failed after it was back"
        )
    assert all(t.status < 500 for t in load.turns)
    print("\n" + "\n".join(report))


def test_a_hung_database_answers_within_the_budget(
    app: Flask, private_mariadb: PrivateMariaDB, load: Load
) -> None:
    time.sleep(0.5)
    private_mariadb.pause()
    frozen_at = time.monotonic()
    try:
        status, out, seconds = _say(
            app, {"type": "IntentRequest", "intent": {"name": "AMAZON.PauseIntent"}}
        )
        assert status == 200 and out["response"]["shouldEndSession"] is True
        assert seconds < ANSWER_BUDGET_S
        time.sleep(4.0)
    finally:
        private_mariadb.resume()
    thawed_at = time.monotonic()
    time.sleep(3.0)
    hung = load.between(frozen_at, thawed_at)
    after = load.between(thawed_at, time.monotonic())
    assert len(after) > 10
    assert hung and all(t.status == 200 for t in hung)
    slowest = max(t.seconds for t in hung)
    assert slowest < ANSWER_BUDGET_S, f"a turn took {slowest:.2f}s while the database hung"
    assert sum(t.failed for t in after) <= 1
    assert all(t.status < 500 for t in load.turns)
    print(
        f"\nSIGSTOP 4s: {len(hung)} turns, {sum(t.failed for t in hung)} apologies, slowest "
        f"{slowest:.2f}s; after SIGCONT {sum(t.failed for t in after)} of {len(after)} failed"
    )

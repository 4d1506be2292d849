"""The batch job on MariaDB with two unsharded workers, one killed with -9, one stopped with TERM.

Real ``bedtime generate`` processes (``python -m generator.batch``) with a tiny model the test
builds run against a private MariaDB. Guarantees: no keyword set gets more stories than its
target, no request is answered twice, no story is partial, a SIGTERMed worker exits cleanly and
holds nothing afterwards (its unfinished requests are pending again), a killed worker's leases
lapse after BEDTIME_LEASE_SECONDS so other workers finish the plan, and a rerun plans nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from db.engine import make_engine, session_factory, upgrade_database
from db.generation_jobs import approved_counts
from db.models import GenerationRequest, PlanLease, Story
from db.store import request_generation
from generator.batch import build_plan
from tests.reliability.conftest import PrivateMariaDB

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["bear", "boat", "cat", "fox", "kite", "moon", "owl", "star"]
PER_SET = 2
PAIRS_PER_KEYWORD = 1
REQUESTS = [["whale"], ["dolphin"], ["lion", "tiger"], ["apple"]]
LEASE_SECONDS = 3
CONFIG = {
    "max_new_tokens": 60,
    "target_new_tokens": 40,
    "min_words": 5,
    "min_distinct_2": 0.0,
    "min_distinct_1": 0.0,
    "max_unknown_word_ratio": 1.0,
    "max_repetition_ratio": 1.0,
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from tests.generator.tiny_story_model import build_tiny_model

    folder = tmp_path_factory.mktemp("generator-faults")
    build_tiny_model(folder / "tiny")
    (folder / "keywords.txt").write_text("\n".join(WORDS) + "\n")
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return folder


@pytest.fixture(scope="module")
def database(private_mariadb: PrivateMariaDB) -> Iterator[str]:
    url = private_mariadb.create_database("bedtime_generate")
    engine = make_engine(url)
    upgrade_database(engine)
    with session_factory(engine)() as session:
        for keywords in REQUESTS:
            request_generation(session, keywords, "en-US")
        session.commit()
    engine.dispose()
    yield url


def start_worker(workdir: Path, url: str, name: str, seed: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BEDTIME_LEASE_SECONDS": str(LEASE_SECONDS)}
    command = [
        sys.executable,
        "-m",
        "generator.batch",
        "--model",
        str(workdir / "tiny" / "model"),
        "--keywords-file",
        str(workdir / "keywords.txt"),
        "--per-set",
        str(PER_SET),
        "--pairs-per-keyword",
        str(PAIRS_PER_KEYWORD),
        "--requests",
        "2",
        "--batch-size",
        "2",
        "--max-attempts",
        "8",
        "--engine",
        "hf",
        "--config",
        str(workdir / "config.json"),
        "--threads",
        "1",
        "--database-url",
        url,
        "--worker-id",
        name,
        "--seed",
        str(seed),
        "--no-progress",
    ]
    with (workdir / f"{name}.log").open("wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(workdir: Path, process: subprocess.Popen[bytes], name: str, timeout: float) -> str:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    output = (workdir / f"{name}.log").read_text(errors="replace")
    assert process.returncode == 0, output[-4000:]
    return output


def approved_total(url: str) -> int:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return sum(approved_counts(session).values())
    finally:
        engine.dispose()


def holds_lease(url: str, holder: str) -> bool:
    """Whether ``holder`` has a plan lease right now (a worker holds none between sets)."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return bool(
                session.scalars(select(PlanLease).where(PlanLease.holder == holder)).first()
            )
    finally:
        engine.dispose()


def check_store(url: str, *, complete: bool) -> None:
    """No overfill, no partial story, no request answered twice; with ``complete``, all done."""
    targets = {
        tuple(sorted(item.keywords)): item.wanted
        for item in build_plan(WORDS, PER_SET, PAIRS_PER_KEYWORD, approved_counts_empty())
    }
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            counts = approved_counts(session)
            for keywords, target in targets.items():
                assert counts.get(keywords, 0) <= target, f"{keywords} overfilled"
                if complete:
                    assert counts.get(keywords, 0) == target, f"{keywords} not filled"
            for story in session.scalars(select(Story)):
                assert story.title.strip() and story.text.strip() and story.keyword_lemmas
            requests = list(session.scalars(select(GenerationRequest)))
            answered = [r.story_id for r in requests if r.status == "done"]
            assert len(answered) == len(set(answered))
            if complete:
                assert {r.status for r in requests} <= {"done", "failed"}
                assert (
                    session.scalars(select(PlanLease).where(PlanLease.holder.is_not(None))).all()
                    == []
                )
    finally:
        engine.dispose()


def approved_counts_empty():  # type: ignore[no-untyped-def]
    from collections import Counter

    return Counter()


def test_kill_9_and_sigterm_then_the_plan_converges(workdir: Path, database: str) -> None:
    killed = start_worker(workdir, database, "killed", 1)
    stopped = start_worker(workdir, database, "stopped", 2)
    deadline = time.monotonic() + 150

    def working(name: str) -> bool:
        return "plan sets to check" in (workdir / f"{name}.log").read_text(errors="replace")

    # Killed while it holds a lease (not in the moment between two sets), so that what a
    # SIGKILL leaves behind is there to be checked below.
    while time.monotonic() < deadline and not (
        approved_total(database) >= 6
        and working("killed")
        and working("stopped")
        and holds_lease(database, "killed")
    ):
        assert killed.poll() is None and stopped.poll() is None, "a worker ended too early"
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    stopped.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    output = finish(workdir, stopped, "stopped", timeout=30)
    stop_seconds = time.monotonic() - stopping
    assert "stopped early: interrupted" in output
    engine = make_engine(database)
    with session_factory(engine)() as session:
        assert not session.scalars(select(PlanLease).where(PlanLease.holder == "stopped")).all()
        held = select(GenerationRequest).where(GenerationRequest.claimed_by == "stopped")
        assert all(r.status != "claimed" for r in session.scalars(held))
        assert session.scalars(select(PlanLease).where(PlanLease.holder == "killed")).all()
    engine.dispose()
    check_store(database, complete=False)

    time.sleep(LEASE_SECONDS + 0.5)  # the killed worker's leases lapse
    first, second = (
        start_worker(workdir, database, "w1", 3),
        start_worker(workdir, database, "w2", 4),
    )
    summaries = [finish(workdir, first, "w1", timeout=240)]
    summaries.append(finish(workdir, second, "w2", timeout=240))
    check_store(database, complete=True)

    rerun = finish(workdir, start_worker(workdir, database, "rerun", 5), "rerun", timeout=120)
    assert "0 queue requests, 0 plan sets to check" in rerun
    assert "generated 0 stories" in rerun
    lines = [line for out in summaries for line in out.splitlines() if line.startswith("generated")]
    print(f"\nSIGTERM to exit: {stop_seconds:.1f}s; after the faults: " + " | ".join(lines))

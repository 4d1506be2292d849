"""The batch job: plan, idempotence, request queue, rejects, crash safety, export, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from db.engine import make_engine, session_factory, upgrade_database
from db.models import GenerationRequest, Story
from db.store import request_generation
from generator.batch import (
    BatchSummary,
    Job,
    build_plan,
    export_catalogue,
    interleave_jobs,
    keyword_pairs,
    read_keyword_file,
    run_batch,
)
from generator.generation.assemble import assemble_story
from generator.generation.config import StoryConfig
from generator.prompting import END_TOKEN, STORY_TOKEN

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = [
    "Once upon a time there was a little {k} who lived by the quiet sea.",
    "Every night the {k} looked up at the sky and counted the shining lights.",
    "One evening a soft wind came and told a story about faraway hills.",
    "The {k} listened and smiled and thought about tomorrow's adventures.",
    "In the morning the {k} built a little boat from driftwood and painted it blue.",
    "Friends came from the meadow to help, carrying ropes, apples and warm bread.",
    "They sailed around the bay until the sun went down behind the orange clouds.",
    "Then everyone said good night, closed their eyes and dreamed happy dreams.",
]


class FakeGenerator:
    """Stands in for StoryGenerator: deterministic text, optional rejects and crashes."""

    engine = "fake"
    model_name = "fake-model"
    model_class = "FakeModel"
    path = Path("/nowhere")

    def __init__(
        self, reject_every: int = 0, crash_after: int | None = None, delay: float = 0.0
    ) -> None:
        self.stats: dict[str, Any] = {"tokens": 0, "generated": 0}
        self.meta: dict[str, Any] = {"name": "fake-model"}
        self.loaded = type("L", (), {"path": Path("/nowhere")})()
        self.model = object()
        self.calls = 0
        self.reject_every = reject_every
        self.crash_after = crash_after
        self.delay = delay

    def generate(
        self,
        keyword_sets: list[tuple[str, ...]],
        seed: int | None = None,
        deadline: float | None = None,
    ) -> list[Any]:
        stories = []
        for keywords in keyword_sets:
            self.calls += 1
            if self.crash_after is not None and self.calls > self.crash_after:
                raise RuntimeError("boom")
            time.sleep(self.delay)
            subject = " and ".join(keywords)
            body = " ".join(s.format(k=subject) for s in SENTENCES)
            body += f" (Story number {seed}-{self.calls}.)"
            if self.reject_every and self.calls % self.reject_every == 0:
                body = "The end."
            text = f" A Story{STORY_TOKEN} {body}{END_TOKEN}"
            stories.append(assemble_story(text, keywords, StoryConfig(), model_name="fake"))
            self.stats["tokens"] += 100
        return stories


@pytest.fixture()
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'bedtime.sqlite3'}"
    engine = make_engine(url)
    upgrade_database(engine)
    factory = session_factory(engine)
    factory.url = url  # type: ignore[attr-defined]
    return factory


def count(factory, status: str | None = None) -> int:  # type: ignore[no-untyped-def]
    with factory() as session:
        stmt = select(func.count()).select_from(Story)
        if status:
            stmt = stmt.where(Story.review_status == status)
        return int(session.scalar(stmt) or 0)


def test_plan_singles_and_pairs() -> None:
    words = ["dragon", "moon", "kite", "bear", "boat"]
    pairs = keyword_pairs(words, 2)
    assert len(pairs) == 5 and len(set(pairs)) == 5
    assert all(a < b for a, b in pairs)
    plan = build_plan(words, 2, 2, existing={("moon",): 2, ("dragon",): 1})  # type: ignore[arg-type]
    wanted = {item.keywords: item.wanted for item in plan}
    assert ("moon",) not in wanted and wanted[("dragon",)] == 1 and wanted[("bear",)] == 2
    jobs = interleave_jobs(plan)
    assert jobs[: len(plan)] == [Job(item.keywords) for item in plan]  # round robin


def test_starter_keywords() -> None:
    from generator.safety import check_text

    words = read_keyword_file()
    assert len(words) >= 60 and len(set(words)) == len(words)
    assert all(check_text(w).ok for w in words)


def test_run_is_idempotent(db) -> None:  # type: ignore[no-untyped-def]
    words = ["dragon", "moon", "kite"]
    first = run_batch(
        db,
        FakeGenerator(),
        keywords=words,
        per_set=2,
        pairs_per_keyword=1,
        batch_size=4,
        progress=False,
        seed=1,
    )
    assert first.approved == 3 * 2 + 2 * 2  # 3 singles + 2 pairs, 2 stories each
    assert count(db, "approved") == first.approved
    again = run_batch(
        db,
        FakeGenerator(),
        keywords=words,
        per_set=2,
        pairs_per_keyword=1,
        batch_size=4,
        progress=False,
        seed=2,
    )
    assert again.generated == 0
    assert count(db) == first.approved


def test_rejects_are_stored_with_reason_and_retried(db) -> None:  # type: ignore[no-untyped-def]
    summary = run_batch(
        db,
        FakeGenerator(reject_every=3),
        keywords=["owl", "cat"],
        per_set=3,
        pairs_per_keyword=0,
        batch_size=2,
        progress=False,
        seed=1,
    )
    assert summary.rejected >= 1
    assert summary.approved == 6
    with db() as session:
        rejected = session.scalars(select(Story).where(Story.review_status == "rejected")).all()
        assert rejected and all(s.rejection_reason for s in rejected)


def test_requests_are_served_first(db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with db() as session:
        request_generation(session, ["whale", "moon"], "en-US")
        with monkeypatch.context() as queued_before_the_policy:
            # The request policy keeps "zombie" out of the queue now; one queued before it was
            # there is still refused by the batch job.
            queued_before_the_policy.setattr("db.store.queue.first_redirect", lambda _w: None)
            request_generation(session, ["zombie"], "en-US")
        request_generation(session, ["owl"], "de-DE")
        session.commit()
    summary = run_batch(
        db,
        FakeGenerator(),
        keywords=["owl"],
        per_set=1,
        pairs_per_keyword=0,
        batch_size=8,
        progress=False,
        seed=1,
    )
    assert summary.requests_done == 1 and summary.requests_failed == 2
    with db() as session:
        failed = session.scalars(
            select(GenerationRequest).where(GenerationRequest.status == "failed")
        ).all()
        assert sorted(r.keywords[0] for r in failed) == ["owl", "zombie"]
        request = session.scalars(
            select(GenerationRequest).where(GenerationRequest.status != "failed")
        ).one()
        assert request.status == "done" and request.story_id is not None
        assert sorted(request.story.keyword_lemmas) == ["moon", "whale"]


def test_crash_leaves_no_partial_story_and_resumes(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError):
        run_batch(
            db,
            FakeGenerator(crash_after=5),
            keywords=["owl", "cat", "bee"],
            per_set=3,
            pairs_per_keyword=0,
            batch_size=1,
            progress=False,
            seed=1,
        )
    assert count(db) == 5
    summary = run_batch(
        db,
        FakeGenerator(),
        keywords=["owl", "cat", "bee"],
        per_set=3,
        pairs_per_keyword=0,
        batch_size=1,
        progress=False,
        seed=9,
    )
    assert summary.generated == 4
    assert count(db, "approved") == 9


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A SIGKILLed worker leaves only whole, committed stories; once its leases lapse, another
    worker completes the plan, and a third run finds nothing to do."""
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from db.engine import make_engine, session_factory
        from generator.batch import run_batch
        from tests.generator.test_batch import FakeGenerator
        factory = session_factory(make_engine({db.url!r}))
        run_batch(factory, FakeGenerator(delay=0.05), keywords=["owl", "cat", "bee", "fox"],
                  per_set=5, pairs_per_keyword=0, batch_size=1, progress=False, seed=1,
                  lease_seconds=1.0, worker_id="killed")
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while count(db) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = count(db)
    assert 3 <= stored < 20
    with db() as session:
        for story in session.scalars(select(Story)):
            assert story.text.endswith(".)") and story.keyword_lemmas  # whole story, linked
    time.sleep(1.2)  # the dead worker's lease on its set lapses
    rerun = {
        "keywords": ["owl", "cat", "bee", "fox"],
        "per_set": 5,
        "pairs_per_keyword": 0,
        "batch_size": 4,
        "progress": False,
        "lease_seconds": 1.0,
    }
    summary = run_batch(db, FakeGenerator(), seed=2, **rerun)  # type: ignore[arg-type]
    assert summary.generated == 20 - stored
    assert count(db, "approved") == 20
    assert run_batch(db, FakeGenerator(), seed=3, **rerun).generated == 0  # type: ignore[arg-type]


def test_export_is_the_catalogue_format(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from db.catalogue import load_starter_catalogue

    run_batch(
        db,
        FakeGenerator(reject_every=4),
        keywords=["owl", "moon"],
        per_set=2,
        pairs_per_keyword=1,
        batch_size=3,
        progress=False,
        seed=1,
    )
    out = tmp_path / "starter.jsonl"
    handwritten = {
        "title": "Hand",
        "text": "A hand-written story.",
        "keywords": ["owl"],
        "source": "handwritten",
        "status": "approved",
    }
    out.write_text(
        json.dumps(handwritten) + "\n" + json.dumps({**handwritten, "source": "generated"}) + "\n"
    )
    exported = export_catalogue(db, out)
    assert json.loads(out.read_text().splitlines()[0]) == handwritten  # kept, generated replaced
    assert len(out.read_text().splitlines()) == exported + 1
    exported = export_catalogue(db, out, keep_handwritten=False)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert exported == len(lines) == count(db, "approved")
    assert all(
        r["status"] == "approved" and r["source"] == "generated" and r["model"] == "fake-model"
        for r in lines
    )
    fresh = session_factory(make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}"))
    upgrade_database(fresh.kw["bind"])
    with fresh() as session:
        assert load_starter_catalogue(session, out) == exported


def test_summary_lines() -> None:
    summary = BatchSummary(generated=10, approved=8, rejected=2, seconds=5, tokens=1000)
    summary.reasons["too short"] = 2
    text = "\n".join(summary.lines())
    assert "7200 stories/h" in text and "200 tokens/s" in text and "too short" in text


def test_cli_and_live_modules_do_not_import_torch() -> None:
    code = (
        "import sys; import generator.batch, generator.live, generator.generation.assemble, "
        "generator.safety; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_generate_command_with_the_tiny_model(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """End to end through click with a real (random) model: stories stored, none half-made."""
    pytest.importorskip("torch")
    from click.testing import CliRunner

    from generator.batch import generate_command
    from tests.generator.tiny_story_model import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "m")
    keywords = tmp_path / "kw.txt"
    keywords.write_text("owl\nmoon\n")
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps(
            {
                "max_new_tokens": 60,
                "target_new_tokens": 40,
                "min_words": 5,
                "min_distinct_2": 0.0,
                "min_distinct_1": 0.0,
            }
        )
    )
    out = tmp_path / "export.jsonl"
    result = CliRunner().invoke(
        generate_command,
        [
            "--model",
            str(model_dir),
            "--keywords-file",
            str(keywords),
            "--per-set",
            "1",
            "--pairs-per-keyword",
            "1",
            "--engine",
            "hf",
            "--config",
            str(config),
            "--threads",
            "1",
            "--database-url",
            db.url,
            "--no-progress",
            "--seed",
            "3",
            "--export",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "generated" in result.output
    assert count(db) >= 3
    with db() as session:
        for story in session.scalars(select(Story)):
            assert story.review_status in {"approved", "rejected"}
            assert story.review_status == "approved" or story.rejection_reason
            assert story.model is not None and story.model.name == "tiny-test"


def test_two_workers_share_the_plan_and_the_queue(db) -> None:  # type: ignore[no-untyped-def]
    """Sharded workers cover the plan exactly once; each request is served by one worker."""
    import threading

    with db() as session:
        for pair in (["whale", "moon"], ["owl", "boat"], ["kite", "star"]):
            request_generation(session, pair, "en-US")
        session.commit()
    words = ["dragon", "moon", "kite", "bear", "boat", "owl"]
    summaries: list[BatchSummary] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            summaries.append(
                run_batch(
                    db,
                    FakeGenerator(delay=0.002),
                    keywords=words,
                    per_set=2,
                    pairs_per_keyword=1,
                    batch_size=2,
                    progress=False,
                    seed=index,
                    worker_id=f"w{index}",
                    shard_index=index,
                    shard_count=2,
                    requests=2,
                )
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sum(s.requests_done for s in summaries) == 3
    planned = 2 * (len(words) + len(keyword_pairs(words, 1)))
    assert count(db, "approved") == planned + 3
    with db() as session:
        statuses = session.scalars(select(GenerationRequest.status)).all()
        assert statuses == ["done"] * 3


def test_generate_refuses_a_database_that_was_never_upgraded(tmp_path: Path) -> None:
    """A fresh file gets the fix in one line, before any model loads, not a SQL traceback."""
    from click.testing import CliRunner

    from generator.batch import generate_command

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(
        generate_command, ["--model", str(tmp_path / "no-model"), "--database-url", url]
    )
    assert result.exit_code == 1
    assert "has no tables yet" in result.output
    assert "bedtime db upgrade" in result.output
    assert "Traceback" not in result.output

"""Cold start and memory: a fresh process's import, first request and resident memory.

Why: Lambda runs a new process for every cold start, and every gunicorn worker holds its own
copy of what the skill loads, so import time, the first request's extra time and the RSS per
process matter as much as the warm turn. Each target runs in a fresh interpreter, ``--runs``
times, next to the hello-world ASK SDK skill (bench/hello_world.py) as the floor:

* ``lambda``: ``import lambda_function`` (builds the skill) from the bundle ``ask deploy``
  uploads (``skill.package.build_lambda_bundle``, bytecode included), then one TellStoryIntent;
* ``worker``: ``create_app()`` as a gunicorn worker runs it (between the post_fork and
  post_worker_init hooks of ``skill.gunicorn_conf``), then one POST /alexa
  TellStoryIntent through Flask's test client (the same code path as a real request);
* ``hello-world lambda`` / ``hello-world worker``: the same for the floor.

Bytecode is as deployed: the Lambda bundle carries its own, and the worker's modules are
compiled once into a private cache (``PYTHONPYCACHEPREFIX``), as ``pip install`` does in the
Docker image; ``--from-source`` compiles every module of ours in every process instead (what a
checkout run with ``PYTHONDONTWRITEBYTECODE=1`` pays). The skill reads a temporary SQLite file
holding the handwritten fixture stories. Printed: import (or app build) ms, first request ms,
their sum, the CPU time of both (``time.process_time``: what a busy machine inflates least),
and VmRSS after the first request, as min / median / max over the runs; and
which heavy modules the skill process had loaded.

    .venv/bin/python bench/bench_cold_start.py --runs 5
    .venv/bin/python bench/bench_cold_start.py --runs 5 --from-source
    .venv/bin/python bench/bench_cold_start.py --runs 5 --stub-request-policy   # diagnosis
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_STORIES = ROOT / "tests" / "fixtures" / "handwritten_stories.jsonl"
HEAVY = ("lemminflect", "numpy", "torch", "transformers", "alembic", "generator", "click")

#: Runs in the fresh interpreter; prints one JSON line.
CHILD = r"""
import json, sys, time
started, started_cpu = time.perf_counter(), time.process_time()
target = sys.argv[1]
sys.path[:0] = [sys.argv[2], *sys.argv[3].split(":")]
from requests_for_bench import tell_story_event
# diagnosis only: what the skill costs besides the policy
if sys.argv[5] == "stub-policy" and not target.startswith("hello"):
    import safety.lists, safety.requests
    safety.requests.request_lists = lambda path=None: safety.lists.WordLists()
    safety.lists.lemmas_of = lambda word: frozenset()
if target == "lambda":
    import lambda_function
    handler = lambda_function.lambda_handler
elif target == "hello-world lambda":
    import hello_world
    handler = hello_world.lambda_handler()
elif target == "worker":
    # as a gunicorn worker runs it: skill.gunicorn_conf's post_fork and post_worker_init hooks
    from skill.server import freeze_start_up, start_without_gc
    start_without_gc(None, None)
    from skill.webapp import create_app
    client = create_app().test_client()
    freeze_start_up(None)
else:
    from hello_world import create_app
    client = create_app().test_client()
if target.endswith("worker"):
    handler = lambda event, _context: client.post("/alexa", json=event).get_json()
imported = time.perf_counter()
out = handler(tell_story_event(), None)
done, done_cpu = time.perf_counter(), time.process_time()
assert "outputSpeech" in out["response"], out
status = open("/proc/self/status").read()
rss_kb = int(status.split("VmRSS:")[1].split()[0])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[4].split(",")))
print(json.dumps({"import_ms": (imported - started) * 1000, "first_ms": (done - imported) * 1000,
                  "cpu_ms": (done_cpu - started_cpu) * 1000,
                  "rss_mb": rss_kb / 1024, "heavy": heavy}))
"""

#: A tiny module the child imports for its request envelope (kept out of the timed imports'
#: way: it needs nothing but the standard library).
REQUESTS_MODULE = """
import uuid
SKILL_ID = "amzn1.ask.skill.00000000-0000-0000-0000-0000000be0c4"

def tell_story_event():
    user = "cold-start-listener"
    slots = {"keyword": {"name": "keyword", "value": "dragons", "confirmationStatus": "NONE"}}
    return {
        "version": "1.0",
        "session": {"new": True, "sessionId": "amzn1.echo-api.session." + str(uuid.uuid4()),
                    "application": {"applicationId": SKILL_ID}, "attributes": {},
                    "user": {"userId": user}},
        "context": {"System": {"application": {"applicationId": SKILL_ID},
                               "user": {"userId": user},
                               "device": {"deviceId": "bench", "supportedInterfaces": {}}}},
        "request": {"type": "IntentRequest",
                    "requestId": "amzn1.echo-api.request." + str(uuid.uuid4()),
                    "timestamp": "2030-01-01T00:00:00Z", "locale": "en-US",
                    "intent": {"name": "TellStoryIntent", "confirmationStatus": "NONE",
                               "slots": slots}},
    }
"""

TARGETS = ("hello-world lambda", "lambda", "hello-world worker", "worker")


def make_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'cold.sqlite3'}"
    code = (
        "import sys; from pathlib import Path\n"
        "from db.engine import make_engine, session_factory, upgrade_database\n"
        "from db.catalogue import load_starter_catalogue\n"
        f"engine = make_engine({url!r}); upgrade_database(engine)\n"
        "with session_factory(engine)() as s:\n"
        f"    load_starter_catalogue(s, Path({str(FIXTURE_STORIES)!r})); s.commit()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=_env(url))
    return url


def _env(url: str, pycache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    env.update(
        BEDTIME_DATABASE_URL=url,
        BEDTIME_VERIFY_REQUESTS="false",
        BEDTIME_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.pop("BEDTIME_SKILL_ID", None)
    env.pop("BEDTIME_LIVE_MODEL", None)
    return env


def prepare_code(folder: Path, from_source: bool) -> tuple[Path, Path | None]:
    """The Lambda code folder (the deploy bundle, or the checkout's shim when ``from_source``)
    and the bytecode cache the other processes use (None: none, compile in every process)."""
    if from_source:
        return ROOT / "lambda", None
    from skill.package import build_lambda_bundle

    bundle = folder / "lambda-bundle"
    build_lambda_bundle(bundle)
    pycache = folder / "pycache"
    packages = [str(ROOT / name) for name in ("settings", "skill", "db", "safety", "bench")]
    env = _env("sqlite://", pycache)
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True, env=env)
    return bundle, pycache


def run_child(
    target: str,
    url: str,
    folder: Path,
    stub_policy: bool,
    code: tuple[Path, Path | None],
) -> dict[str, object]:
    lambda_dir, pycache = code
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            target,
            str(folder),
            f"{lambda_dir}:{ROOT / 'bench'}",
            ",".join(HEAVY),
            "stub-policy" if stub_policy else "-",
        ],
        capture_output=True,
        text=True,
        cwd=folder,
        # The bundle reads its own __pycache__ (a prefix would hide it) and, like Lambda's
        # read-only code folder, writes none.
        env=_env(url, None if target == "lambda" else pycache),
    )
    if done.returncode != 0:
        raise SystemExit(f"{target} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: Sequence[float]) -> str:
    return f"{min(values):.0f} / {statistics.median(values):.0f} / {max(values):.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--stub-request-policy",
        action="store_true",
        help="diagnosis: replace safety's request policy (its word lists need lemminflect) by "
        "empty lists, to see what the rest of the skill costs; not a way to run the skill",
    )
    parser.add_argument(
        "--from-source",
        action="store_true",
        help="no bytecode anywhere: every process compiles our modules from source",
    )
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, object]]] = {target: [] for target in TARGETS}
    with tempfile.TemporaryDirectory(prefix="bedtime-cold-") as tmp:
        folder = Path(tmp)
        (folder / "requests_for_bench.py").write_text(REQUESTS_MODULE)
        url = make_database(folder)
        code = prepare_code(folder, args.from_source)
        for target in TARGETS:  # one unrecorded round: the files in the page cache, as usual
            run_child(target, url, folder, args.stub_request_policy, code)
        for _ in range(args.runs):
            for target in TARGETS:  # interleaved, so machine load hits every target alike
                results[target].append(
                    run_child(target, url, folder, args.stub_request_policy, code)
                )
    print("| process | import / build ms | first request ms | together ms | CPU ms | RSS MB |")
    print("|---|---|---|---|---|---|")
    for target, runs in results.items():
        imports = [float(r["import_ms"]) for r in runs]  # type: ignore[arg-type]
        firsts = [float(r["first_ms"]) for r in runs]  # type: ignore[arg-type]
        totals = [a + b for a, b in zip(imports, firsts, strict=True)]
        cpu = [float(r["cpu_ms"]) for r in runs]  # type: ignore[arg-type]
        rss = [float(r["rss_mb"]) for r in runs]  # type: ignore[arg-type]
        print(
            f"| {target} | {spread(imports)} | {spread(firsts)} | {spread(totals)} "
            f"| {spread(cpu)} | {spread(rss)} |"
        )
    bytecode = "compiled in every process" if args.from_source else "bytecode as deployed"
    print(f"(min / median / max of {args.runs} fresh processes each; {bytecode})")
    for target in ("lambda", "worker"):
        print(f"heavy modules loaded by {target}: {', '.join(results[target][0]['heavy']) or '-'}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cold start and memory: a fresh process's import, first request and resident memory.

Why: Lambda runs a new process for every cold start, and every gunicorn worker holds its own
copy of what the skill loads, so import time, the first request's extra time and the RSS per
process matter as much as the warm turn. Each target runs in a fresh interpreter, ``--runs``
times, next to the hello-world ASK SDK skill (bench/hello_world.py) as the floor:

* ``lambda``: ``import lambda_function`` (builds the skill), then one TellStoryIntent;
* ``worker``: ``create_app()`` as a gunicorn worker runs it, then one POST /alexa
  TellStoryIntent through Flask's test client (the same code path as a real request);
* ``hello-world lambda`` / ``hello-world worker``: the same for the floor.

The skill reads a temporary SQLite file holding the handwritten fixture stories. Printed: import
(or app build) ms, first request ms, their sum, and VmRSS after the first request, as
min / median / max over the runs; and which heavy modules the skill process had loaded.

    .venv/bin/python bench/bench_cold_start.py --runs 5
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
started = time.perf_counter()
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
else:
    if target == "worker":
        from skill.webapp import create_app
    else:
        from hello_world import create_app
    client = create_app().test_client()
    handler = lambda event, _context: client.post("/alexa", json=event).get_json()
imported = time.perf_counter()
out = handler(tell_story_event(), None)
done = time.perf_counter()
assert "outputSpeech" in out["response"], out
status = open("/proc/self/status").read()
rss_kb = int(status.split("VmRSS:")[1].split()[0])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[4].split(",")))
print(json.dumps({"import_ms": (imported - started) * 1000, "first_ms": (done - imported) * 1000,
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


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BEDTIME_DATABASE_URL=url,
        BEDTIME_VERIFY_REQUESTS="false",
        BEDTIME_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.pop("BEDTIME_SKILL_ID", None)
    env.pop("BEDTIME_LIVE_MODEL", None)
    return env


def run_child(target: str, url: str, folder: Path, stub_policy: bool) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            target,
            str(folder),
            f"{ROOT / 'lambda'}:{ROOT / 'bench'}",
            ",".join(HEAVY),
            "stub-policy" if stub_policy else "-",
        ],
        capture_output=True,
        text=True,
        cwd=folder,
        env=_env(url),
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
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, object]]] = {target: [] for target in TARGETS}
    with tempfile.TemporaryDirectory(prefix="bedtime-cold-") as tmp:
        folder = Path(tmp)
        (folder / "requests_for_bench.py").write_text(REQUESTS_MODULE)
        url = make_database(folder)
        for _ in range(args.runs):
            for target in TARGETS:  # interleaved, so machine load hits every target alike
                results[target].append(run_child(target, url, folder, args.stub_request_policy))
    print("| process | import / build ms | first request ms | together ms | RSS MB |")
    print("|---|---|---|---|---|")
    for target, runs in results.items():
        imports = [float(r["import_ms"]) for r in runs]  # type: ignore[arg-type]
        firsts = [float(r["first_ms"]) for r in runs]  # type: ignore[arg-type]
        totals = [a + b for a, b in zip(imports, firsts, strict=True)]
        rss = [float(r["rss_mb"]) for r in runs]  # type: ignore[arg-type]
        print(
            f"| {target} | {spread(imports)} | {spread(firsts)} | {spread(totals)} "
            f"| {spread(rss)} |"
        )
    print("(min / median / max of", args.runs, "fresh processes each)")
    for target in ("lambda", "worker"):
        print(f"heavy modules loaded by {target}: {', '.join(results[target][0]['heavy']) or '-'}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The skill over HTTP under load: gunicorn + wrk, next to the hello-world ASK SDK skill.

Why: in production every turn is an HTTPS POST to gunicorn workers sharing one database, so
throughput and tail latency under concurrent load (SQLite's write lock, MariaDB round trips,
per-request Python) are what a listener feels. This serves, one after the other on the same
port and machine, the hello-world skill (bench/hello_world.py, the floor) and Bedtime Stories
(``skill.webapp:create_app()``, its defaults except request verification, which wrk cannot
satisfy), each with ``--workers`` gunicorn sync workers, and drives each case with
``wrk -c --connections`` for ``--seconds``, ``--runs`` times, interleaved so machine load hits
every case alike. Cases: TellStoryIntent for a new listener every request; for returning
listeners (2,000 who have heard 20 stories each before the first run, as bench_turn.py's, drawn
at random); for heavy listeners (50 who have heard 600 stories each before the first run, so most
of their turns find nothing unheard, retell the story heard longest ago and ask for a new one);
and LaunchRequest for the returning listeners. Requests ask for one of the catalogue's first 50
keywords (bench_choose_story.py's synthetic catalogue); histories are given through the skill
itself, in-process, before the servers start, so every run starts from about the same state.

Printed: requests/s and p50/p99 latency (wrk's --latency), min / median / max over the runs,
and throughput as a share of the hello-world skill's (median over median). A second table says
where the machine's CPU went per request (from /proc: the gunicorn master and workers, the
database server when it runs here, wrk itself) and the requests/s all cores could serve at that
cost, the ceiling no change inside the skill alone can pass while the database shares the cores.

    .venv/bin/python bench/bench_http.py                          # SQLite, 1,000 stories
    .venv/bin/python bench/bench_http.py --backend mysql --stories 100000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "bench"):  # runnable as a plain script from a checkout
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_choose_story import KEYWORDS, Catalogue, bulk_load, lemma  # noqa: E402
from hello_world import SKILL_ID  # noqa: E402
from sqlalchemy import text  # noqa: E402

from db.engine import make_engine  # noqa: E402
from db.models import Base  # noqa: E402

log = logging.getLogger("bench")

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
#: Returning listeners and the stories each has heard before the first run (bench_turn.py's).
RETURNING, HISTORY = 2000, 20
#: Heavy listeners, who have heard most of what they ask for.
HEAVY, HEAVY_HISTORY = 50, 600
#: The keywords requests ask for (lemma(0) ... lemma(49)).
ASKED_KEYWORDS = 50

#: wrk script: one request envelope per call, listener and keyword varying per request.
WRK_SCRIPT = r"""
local kind, keywords = "%(kind)s", {%(keywords)s}
local counter, thread_id = 0, 0
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(1000 + thread_id)
end

local function envelope(user, request)
  return '{"version":"1.0","session":{"new":true,"sessionId":"amzn1.echo-api.session.'
    .. user .. counter .. '","application":{"applicationId":"%(skill_id)s"},'
    .. '"attributes":{},"user":{"userId":"' .. user .. '"}},'
    .. '"context":{"System":{"application":{"applicationId":"%(skill_id)s"},'
    .. '"user":{"userId":"' .. user .. '"},"device":{"deviceId":"wrk","supportedInterfaces":{}}}},'
    .. '"request":{"requestId":"amzn1.echo-api.request.' .. thread_id .. '-' .. counter
    .. '","timestamp":"2030-01-01T00:00:00Z","locale":"en-US",' .. request .. '}}'
end

function request()
  counter = counter + 1
  local user
  if kind == "new" then
    user = "wrk-new-%(run)s-" .. thread_id .. "-" .. counter
  elseif kind == "heavy" then
    user = "wrk-heavy-" .. (counter %% %(heavy)d)
  else
    user = "wrk-returning-" .. (math.random(%(returning)d) - 1)
  end
  local body
  if kind == "launch" then
    body = envelope(user, '"type":"LaunchRequest"')
  else
    local keyword = keywords[math.random(#keywords)]
    body = envelope(user, '"type":"IntentRequest","intent":{"name":"TellStoryIntent",'
      .. '"confirmationStatus":"NONE","slots":{"keyword":{"name":"keyword","value":"'
      .. keyword .. '","confirmationStatus":"NONE"}}}')
  end
  return wrk.format("POST", "/alexa", {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass(frozen=True)
class Case:
    label: str
    app: str  # "hello" or "bedtime"
    kind: str  # "new", "returning", "heavy" or "launch"


CASES = [
    Case("hello-world: intent", "hello", "new"),
    Case("hello-world: launch", "hello", "launch"),
    Case("TellStory, new listener", "bedtime", "new"),
    Case("TellStory, returning listener", "bedtime", "returning"),
    Case("TellStory, heavy listener", "bedtime", "heavy"),
    Case("Launch, returning listener", "bedtime", "launch"),
]


@dataclass
class Figures:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    errors: int = 0
    #: CPU ms per request, per run: gunicorn (master + workers), database server, wrk.
    cpu: dict[str, list[float]] = field(default_factory=dict)


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int, with_children: bool = False) -> float:
    """User + system CPU of a live process (and of its live children) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / _TICK
    if with_children:
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            for child in task.read_text().split():
                total += process_cpu_seconds(int(child))
    return total


def database_server_pid(url: str) -> int | None:
    """The MariaDB server's pid when it runs on this machine (its pid file), else None."""
    if not url.startswith("mysql"):
        return None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            pid_file, datadir = connection.execute(text("SELECT @@pid_file, @@datadir")).one()
        path = Path(datadir) / pid_file
        return int(path.read_text().split()[0])
    except (OSError, ValueError) as exc:
        log.info("database server CPU not measured: %s", exc)
        return None
    finally:
        engine.dispose()


def cpu_sample(server_pid: int, database_pid: int | None) -> dict[str, float]:
    """Seconds of CPU so far: gunicorn with its workers, the database, waited-for children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "gunicorn": process_cpu_seconds(server_pid, with_children=True),
        "database": process_cpu_seconds(database_pid) if database_pid else 0.0,
        "wrk": children.ru_utime + children.ru_stime,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """gunicorn serving one app until stopped; its log goes to a file."""

    def __init__(
        self, app: str, url: str, workers: int, folder: Path, worker_class: str = "sync"
    ) -> None:
        self.port = free_port()
        target = "hello_world:create_app()" if app == "hello" else "skill.webapp:create_app()"
        env = dict(os.environ)
        env.update(
            BEDTIME_DATABASE_URL=url,
            BEDTIME_VERIFY_REQUESTS="false",
            BEDTIME_SKILL_ID=SKILL_ID,
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
        )
        env.pop("BEDTIME_LIVE_MODEL", None)
        self.log_path = folder / f"gunicorn-{app}.log"
        self.process = subprocess.Popen(
            [
                GUNICORN,
                "-w",
                str(workers),
                *(["-k", "gthread", "--threads", "8"] if worker_class == "gthread" else []),
                "-b",
                f"127.0.0.1:{self.port}",
                target,
            ],
            cwd=folder,
            env=env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Up when a request is answered (each worker then warms on the first few requests)."""
        deadline = time.monotonic() + 60
        body = json.dumps(_launch_envelope()).encode()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {self.log_path}")
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}/alexa",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer within 60 s; see {self.log_path}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        errors = [line for line in self.log_path.read_text().splitlines() if " ERROR " in line]
        if errors:
            log.warning("%d errors logged by the server, the first: %s", len(errors), errors[0])


def _launch_envelope() -> dict[str, Any]:
    user = {"userId": "warm-up"}
    application = {"applicationId": SKILL_ID}
    return {
        "version": "1.0",
        "session": {
            "new": True,
            "sessionId": "amzn1.echo-api.session.warm",
            "application": application,
            "attributes": {},
            "user": user,
        },
        "context": {"System": {"application": application, "user": user, "device": {}}},
        "request": {
            "type": "LaunchRequest",
            "requestId": "amzn1.echo-api.request.warm",
            "timestamp": "2030-01-01T00:00:00Z",
            "locale": "en-US",
        },
    }


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    port: int, case: Case, args: argparse.Namespace, folder: Path, run: int, seconds: int = 0
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx + socket errors) of one wrk run."""
    catalogue_keywords = ", ".join(f'"{lemma(i)}"' for i in range(min(KEYWORDS, ASKED_KEYWORDS)))
    script = folder / f"wrk-{case.kind}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "kind": case.kind,
            "keywords": catalogue_keywords,
            "skill_id": SKILL_ID,
            "returning": RETURNING,
            "heavy": HEAVY,
            "run": f"{run}-{time.monotonic_ns()}",
        }
    )
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(args.threads),
            "-c",
            str(args.connections),
            "-d",
            f"{seconds or args.seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/alexa",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    log.debug("wrk %s:\n%s", case.label, out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(out)}
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, latency["50"], latency["99"], errors


def prepare_database(args: argparse.Namespace, folder: Path) -> str:
    """A database with the synthetic catalogue; the URL the servers use."""
    if args.backend == "sqlite":
        url = f"sqlite:///{folder / 'http.sqlite3'}"
    else:
        name = "bedtime_bench_http"
        server = make_engine(args.mysql_server)
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            connection.execute(
                text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            )
        server.dispose()
        url = f"{args.mysql_server.rstrip('/')}/{name}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    seconds, _ = bulk_load(engine, Catalogue(args.stories))
    log.info("loaded %d stories in %.1f s", args.stories, seconds)
    engine.dispose()
    return url


def give_histories(url: str) -> None:
    """Returning and heavy listeners hear their stories through the skill, in-process."""
    from bench_turn import bedtime_handler, envelope, tell_story

    engine = make_engine(url)
    handler = bedtime_handler(engine)
    rng = random.Random(11)
    quiet = [logging.getLogger(name) for name in ("skill", "db", "safety")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # a log line per seeded turn would bury the bench's own
        logger.setLevel(logging.WARNING)
    started = time.monotonic()
    for prefix, listeners, plays in (
        ("wrk-returning", RETURNING, HISTORY),
        ("wrk-heavy", HEAVY, HEAVY_HISTORY),
    ):
        for turn in range(listeners * plays):
            keyword = lemma(rng.randrange(min(KEYWORDS, ASKED_KEYWORDS)))
            handler(envelope(f"{prefix}-{turn % listeners}", tell_story(keyword)), None)
    engine.dispose()
    for logger, level in zip(quiet, levels, strict=True):
        logger.setLevel(level)
    log.info("listener histories given in %.0f s", time.monotonic() - started)


def drop_database(args: argparse.Namespace) -> None:
    if args.backend == "mysql":
        server = make_engine(args.mysql_server)
        with server.connect() as connection:
            connection.execute(text("DROP DATABASE IF EXISTS bedtime_bench_http"))
        server.dispose()


def spread(values: Sequence[float], digits: int = 0) -> str:
    return " / ".join(
        f"{v:,.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), default="sqlite")
    parser.add_argument("--stories", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="sync",
        help="sync (one request at a time, as the issue measured) or gthread with 8 threads "
        "(what bedtime serve and the Docker image run)",
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--mysql-server", default="mysql+pymysql://root@127.0.0.1:3306", help="server URL, no db"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    figures = {case.label: Figures() for case in CASES}
    with tempfile.TemporaryDirectory(prefix="bedtime-http-") as tmp:
        folder = Path(tmp)
        url = prepare_database(args, folder)
        give_histories(url)
        database_pid = database_server_pid(url)
        try:
            for run in range(args.runs):
                for app in ("hello", "bedtime"):
                    server = Server(app, url, args.workers, folder, args.worker_class)
                    try:
                        for case in (c for c in CASES if c.app == app):  # warm every worker
                            run_wrk(server.port, case, args, folder, run, seconds=2)
                        for case in (c for c in CASES if c.app == app):
                            before = cpu_sample(server.process.pid, database_pid)
                            rps, p50, p99, errors = run_wrk(server.port, case, args, folder, run)
                            after = cpu_sample(server.process.pid, database_pid)
                            f = figures[case.label]
                            served = rps * args.seconds
                            for part in before:
                                spent = (after[part] - before[part]) * 1000 / served
                                f.cpu.setdefault(part, []).append(spent)
                            f.rps.append(rps)
                            f.p50.append(p50)
                            f.p99.append(p99)
                            f.errors += errors
                            log.info("run %d %s: %.0f req/s p99 %.1f ms", run, case.label, rps, p99)
                    finally:
                        server.stop()
        finally:
            drop_database(args)
    floor = {
        "new": statistics.median(figures["hello-world: intent"].rps),
        "returning": statistics.median(figures["hello-world: intent"].rps),
        "heavy": statistics.median(figures["hello-world: intent"].rps),
        "launch": statistics.median(figures["hello-world: launch"].rps),
    }
    print(
        f"{args.backend}, {args.stories:,} stories, gunicorn {args.workers} {args.worker_class} "
        "workers, "
        f"wrk {args.connections} connections, {args.seconds} s x {args.runs} runs "
        "(min / median / max)"
    )
    print("| case | requests/s | p50 ms | p99 ms | vs hello-world | errors |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        f = figures[case.label]
        share = statistics.median(f.rps) / floor[case.kind]
        print(
            f"| {case.label} | {spread(f.rps)} | {spread(f.p50, 2)} | {spread(f.p99, 1)} "
            f"| {share:.0%} | {f.errors} |"
        )
    cores = os.cpu_count() or 1
    print()
    print(f"CPU per request, ms (median of the runs; {cores} cores on this machine):")
    print("| case | gunicorn | database server | wrk | all | ceiling at all cores, req/s |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        f = figures[case.label]
        parts = {part: statistics.median(values) for part, values in f.cpu.items()}
        total = sum(parts.values())
        database = f"{parts['database']:.2f}" if database_pid else "not here"
        ceiling = f"{cores * 1000 / total:,.0f}" if total else "-"
        print(
            f"| {case.label} | {parts['gunicorn']:.2f} | {database} | {parts['wrk']:.2f} "
            f"| {total:.2f} | {ceiling} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A skill turn in-process, next to a hello-world ASK SDK skill measured in the same run.

Why: the floor for a turn is what the ASK SDK itself costs (deserialising the envelope,
dispatch, serialising the response). This builds that floor, a hello-world skill with one
LaunchRequest and one intent handler (bench/hello_world.py), and times it turn by turn alongside
Bedtime Stories' TellStoryIntent (a new listener each turn, and returning listeners with a play
history) and LaunchRequest, through ``lambda_handler`` exactly as Lambda calls it. The catalogue
is bench_choose_story.py's synthetic one (500 Zipf-popular keywords); TellStory requests ask
for one keyword with the same popularity among those that have an approved story, and a case of
its own asks for keywords that have none (a miss: suggestions, and a generation request
queued). Each run times ``--turns`` turns per case after a warm-up;
the table gives min / median / max over ``--runs`` runs of each run's p50 and p99, and the
ratio of the medians to the hello-world skill's. A last row per database times one
one-row UPDATE and its COMMIT on the same engine: no turn that writes can beat it.

``--profile N`` instead profiles N warm TellStoryIntent turns (new listeners) with cProfile and
prints the top entries by cumulative time.

    .venv/bin/python bench/bench_turn.py --backends sqlite,mysql --sizes 1000,100000
    .venv/bin/python bench/bench_turn.py --backends mysql --sizes 1000000 --keep
    .venv/bin/python bench/bench_turn.py --backends mysql --sizes 1000000 --buffer-pool-mb 1024
    .venv/bin/python bench/bench_turn.py --backends sqlite --sizes 1000 --profile 500
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "bench"):  # runnable as a plain script from a checkout
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_choose_story import (  # noqa: E402
    KEYWORDS,
    Catalogue,
    add_buffer_pool_option,
    buffer_pool,
    bulk_load,
    lemma,
    warm_pool,
)
from hello_world import SKILL_ID  # noqa: E402
from hello_world import lambda_handler as hello_world_handler  # noqa: E402

from db.engine import make_engine, session_factory  # noqa: E402
from db.models import Base  # noqa: E402
from settings import Settings  # noqa: E402
from skill.builder import build_skill  # noqa: E402
from skill.services import SkillServices  # noqa: E402

log = logging.getLogger("bench")

RETURNING = 50  # returning listeners, each with a play history
HISTORY = 20  # stories each returning listener has heard before the timed runs
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


# --------------------------------------------------------------------------- requests
def envelope(user_id: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "session": {
            "new": True,
            "sessionId": f"amzn1.echo-api.session.{uuid.uuid4()}",
            "application": {"applicationId": SKILL_ID},
            "attributes": {},
            "user": {"userId": user_id},
        },
        "context": {
            "System": {
                "application": {"applicationId": SKILL_ID},
                "user": {"userId": user_id},
                "device": {"deviceId": "bench", "supportedInterfaces": {}},
            }
        },
        "request": {
            "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
            "timestamp": "2030-01-01T00:00:00Z",
            "locale": "en-US",
            **request,
        },
    }


def tell_story(keyword: str) -> dict[str, Any]:
    slots = {"keyword": {"name": "keyword", "value": keyword, "confirmationStatus": "NONE"}}
    return {
        "type": "IntentRequest",
        "intent": {"name": "TellStoryIntent", "confirmationStatus": "NONE", "slots": slots},
    }


LAUNCH = {"type": "LaunchRequest"}


@dataclass(frozen=True)
class Case:
    label: str
    skill: str  # "hello" or "bedtime"
    make_event: Callable[[random.Random, int], dict[str, Any]]


def told_keywords(size: int) -> set[int]:
    """Keyword indices (``lemma(i)``) with an approved en-US story in the synthetic catalogue."""
    return {
        keyword_id - 1
        for _story, links, _pairs in Catalogue(size).rows()  # a fresh one: the rows loaded
        for _, keyword_id, locale, approved, _ in links
        if approved and locale == "en-US"
    }


def make_cases(catalogue: Catalogue) -> list[Case]:
    told = told_keywords(catalogue.size)
    untold = sorted(set(range(KEYWORDS)) - told)

    def keyword(rng: random.Random) -> str:
        """A keyword with stories, as popular as it is (Zipf); misses are their own case."""
        while (index := catalogue.zipf_keyword(rng)) not in told:
            pass
        return lemma(index)

    def missing(rng: random.Random) -> str:
        return lemma(rng.choice(untold)) if untold else keyword(rng)

    def returning(i: int) -> str:
        return f"bench-returning-{i % RETURNING}"

    return [
        Case("hello-world: launch", "hello", lambda rng, i: envelope("hello", LAUNCH)),
        Case(
            "hello-world: intent",
            "hello",
            lambda rng, i: envelope("hello", tell_story(keyword(rng))),
        ),
        Case(
            "TellStory, new listener",
            "bedtime",
            lambda rng, i: envelope(f"bench-new-{uuid.uuid4()}", tell_story(keyword(rng))),
        ),
        Case(
            "TellStory, returning listener",
            "bedtime",
            lambda rng, i: envelope(returning(i), tell_story(keyword(rng))),
        ),
        Case(
            "TellStory, keyword without stories",
            "bedtime",
            lambda rng, i: envelope(f"bench-miss-{uuid.uuid4()}", tell_story(missing(rng))),
        ),
        Case(
            "Launch, returning listener", "bedtime", lambda rng, i: envelope(returning(i), LAUNCH)
        ),
    ]


# --------------------------------------------------------------------------- databases
def prepare(
    backend: str, size: int, mysql_server: str, workdir: Path, keep: bool
) -> tuple[Engine, Catalogue, Callable[[], None]]:
    """A database with ``size`` synthetic stories (reused when --keep left one behind)."""
    catalogue = Catalogue(size)
    if backend == "sqlite":
        path = workdir / f"bench_turn_{size}.sqlite3"
        url = f"sqlite:///{path}"
    else:
        name = f"bedtime_bench_turn_{size}"
        server = make_engine(mysql_server)
        with server.connect() as connection:
            connection.execute(
                text(
                    f"CREATE DATABASE IF NOT EXISTS {name} "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            )
        server.dispose()
        url = f"{mysql_server.rstrip('/')}/{name}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT COUNT(*) FROM stories")).scalar()
    if stored != size:
        if stored:
            Base.metadata.drop_all(engine)
            Base.metadata.create_all(engine)
        log.info("loading %d stories into %s", size, backend)
        seconds, _ = bulk_load(engine, catalogue)
        log.info("loaded in %.1f s", seconds)
        with engine.begin() as connection:
            connection.execute(text("ANALYZE TABLE stories" if backend == "mysql" else "ANALYZE"))
        catalogue = Catalogue(size)  # the load consumed its random stream

    def drop() -> None:
        if keep:
            engine.dispose()
            return
        Base.metadata.drop_all(engine)
        engine.dispose()
        if backend == "mysql":
            server = make_engine(mysql_server)
            with server.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]}"))
            server.dispose()

    return engine, catalogue, drop


def bedtime_handler(engine: Engine) -> Handler:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, skill_id=SKILL_ID, verify_requests=False)
    services = SkillServices(
        settings=settings, engine=engine, session_factory=session_factory(engine)
    )
    return build_skill(services=services).lambda_handler()


def give_history(handler: Handler, catalogue: Catalogue) -> None:
    """Returning listeners hear HISTORY stories each, through the skill itself."""
    rng = random.Random(5)
    for listener in range(RETURNING):
        for _ in range(HISTORY):
            keyword = lemma(catalogue.zipf_keyword(rng))
            handler(envelope(f"bench-returning-{listener}", tell_story(keyword)), None)


# --------------------------------------------------------------------------- timing
@dataclass
class Figures:
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def time_case(handler: Handler, case: Case, turns: int, seed: int) -> tuple[float, float]:
    """(p50, p99) in ms of ``turns`` turns after turns // 10 warm-up turns."""
    rng = random.Random(seed)
    warm = turns // 10
    events = [case.make_event(rng, i) for i in range(turns + warm)]
    timings = []
    for index, event in enumerate(events):
        started = time.perf_counter()
        out = handler(event, None)
        elapsed = (time.perf_counter() - started) * 1000
        if index >= warm:
            timings.append(elapsed)
    if "outputSpeech" not in out["response"]:
        raise RuntimeError(f"{case.label}: no speech in {out}")
    return statistics.median(timings), _percentile(timings, 0.99)


#: A turn that writes cannot be faster than one durable write transaction on its database.
COMMIT_FLOOR = "floor: one UPDATE + COMMIT"


def time_commit(engine: Engine, turns: int) -> tuple[float, float]:
    """(p50, p99) in ms of a one-row UPDATE and its COMMIT: the database's own floor for a turn
    that writes (MariaDB waits for the log flush, innodb_flush_log_at_trx_commit=1)."""
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_commit_floor"))
        connection.execute(
            text("CREATE TABLE bench_commit_floor (id INTEGER PRIMARY KEY, n INTEGER)")
        )
        connection.execute(text("INSERT INTO bench_commit_floor VALUES (1, 0)"))
    update = text("UPDATE bench_commit_floor SET n = n + 1 WHERE id = 1")
    timings = []
    try:
        for index in range(turns + turns // 10):
            started = time.perf_counter()
            with engine.begin() as connection:
                connection.execute(update)
            if index >= turns // 10:
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE bench_commit_floor"))
    return statistics.median(timings), _percentile(timings, 0.99)


def spread(values: Sequence[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def print_table(
    rows: list[tuple[str, int, str, Figures]], floor: dict[tuple[str, int], float]
) -> None:
    print(
        "| backend | stories | case | p50 ms min / median / max | p99 ms min / median / max "
        "| p50 vs hello-world |"
    )
    print("|---|---|---|---|---|---|")
    for backend, size, label, figures in rows:
        base = floor[(backend, size)]
        ratio = statistics.median(figures.p50) / base if base else float("nan")
        print(
            f"| {backend} | {size:,} | {label} | {spread(figures.p50)} | {spread(figures.p99)} "
            f"| {ratio:.1f}x |"
        )


def profile(handler: Handler, catalogue: Catalogue, turns: int) -> None:
    """cProfile of ``turns`` warm TellStoryIntent turns for new listeners."""
    case = make_cases(catalogue)[2]
    rng = random.Random(1)
    for i in range(50):
        handler(case.make_event(rng, i), None)
    events = [case.make_event(rng, i) for i in range(turns)]
    profiler = cProfile.Profile()
    profiler.enable()
    for event in events:
        handler(event, None)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(int(os.environ.get("BENCH_PROFILE_LINES", "12")))
    if os.environ.get("BENCH_PROFILE_TOTTIME"):
        stats.sort_stats("tottime").print_stats(int(os.environ["BENCH_PROFILE_TOTTIME"]))
    print(out.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,mysql", help="comma list: sqlite,mysql")
    parser.add_argument("--sizes", default="1000,100000", help="comma list of story counts")
    parser.add_argument("--turns", type=int, default=500, help="timed turns per case and run")
    parser.add_argument("--runs", type=int, default=3, help="runs (min / median / max over them)")
    parser.add_argument("--profile", type=int, default=0, help="profile N TellStory turns instead")
    parser.add_argument(
        "--mysql-server", default="mysql+pymysql://root@127.0.0.1:3306", help="server URL, no db"
    )
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the databases")
    parser.add_argument("--workdir", type=Path, help="folder for SQLite files (default: temp)")
    add_buffer_pool_option(parser)
    args = parser.parse_args(argv)
    with buffer_pool(args):
        return run_all(args)


def run_all(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("db").setLevel(logging.WARNING)
    logging.getLogger("skill").setLevel(logging.WARNING)

    rows: list[tuple[str, int, str, Figures]] = []
    floor: dict[tuple[str, int], float] = {}
    hello = hello_world_handler()
    with tempfile.TemporaryDirectory(prefix="bedtime-bench-turn-") as tmp:
        workdir = args.workdir or Path(tmp)
        for backend in args.backends.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                engine, catalogue, drop = prepare(
                    backend, size, args.mysql_server, workdir, args.keep
                )
                try:
                    if args.warm_pool and backend == "mysql":
                        warm_pool(engine)
                    bedtime = bedtime_handler(engine)
                    if args.profile:
                        profile(bedtime, catalogue, args.profile)
                        continue
                    give_history(bedtime, catalogue)
                    figures = {case.label: Figures() for case in make_cases(catalogue)}
                    figures[COMMIT_FLOOR] = Figures()
                    for run in range(args.runs):
                        for case in make_cases(catalogue):
                            handler = hello if case.skill == "hello" else bedtime
                            p50, p99 = time_case(handler, case, args.turns, seed=run)
                            figures[case.label].p50.append(p50)
                            figures[case.label].p99.append(p99)
                        p50, p99 = time_commit(engine, args.turns)
                        figures[COMMIT_FLOOR].p50.append(p50)
                        figures[COMMIT_FLOOR].p99.append(p99)
                        log.info("%s %d: run %d done", backend, size, run + 1)
                    floor[(backend, size)] = statistics.median(figures["hello-world: intent"].p50)
                    rows += [(backend, size, label, f) for label, f in figures.items()]
                finally:
                    drop()
    if rows:
        print_table(rows, floor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

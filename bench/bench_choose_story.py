"""Benchmark db.store.choose_story at 1k / 100k / 1M stories on SQLite and MariaDB/MySQL.

Why: choosing must stay fast however large the catalogue grows (no ORDER BY RAND()). This loads
a synthetic catalogue with raw multi-row INSERTs (fast bulk load), then times choose_story with
0, 1 and 2 keywords for a listener with a play history, and prints a p50/p99 table per run and
a summary of the runs (``--runs``, default 3: min / median / max).

Synthetic catalogue: 500 keywords with Zipf-like popularity (the top keyword is on ~15% of
stories), 1-3 keywords per story, 90% en-US / 10% en-GB, 90% approved. Keyword requests follow
the same popularity. "2 kw (co-occurring)" asks for two keywords of one existing story (a real
request the catalogue can satisfy); "2 kw (random pair)" asks for two independent keywords,
which often have no common story and exercise the partial-match fallback.

MySQL uses a throw-away database ``bedtime_bench`` that is dropped afterwards (--keep to keep).

    .venv/bin/python bench/bench_choose_story.py                       # everything
    .venv/bin/python bench/bench_choose_story.py --backends sqlite --sizes 1000,100000
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import itertools
import logging
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from db import store  # noqa: E402
from db.engine import make_engine, masked_url, session_factory  # noqa: E402
from db.models import RANDOM_KEY_SPACE, Base  # noqa: E402

log = logging.getLogger("bench")

KEYWORDS = 500
BENCH_DATABASE = "bedtime_bench"
LISTENER = store.hash_listener_id("bench-listener")
HISTORY = 200
CHUNK = 10_000
TEXT = (
    "Once upon a time, in a quiet village by the sea, a small friend set out at dusk to find "
    "where the stars go to sleep. Along the way there were gentle songs, soft winds and a "
    "warm cup of milk, and when the moon rose everyone was tucked in bed. The end. "
)


@dataclass(frozen=True)
class Case:
    label: str
    make_keywords: Callable[[random.Random], list[str]]


@dataclass
class Result:
    backend: str
    stories: int
    case: str
    p50_ms: float
    p99_ms: float
    max_ms: float
    matches: Counter[str]
    # MySQL only: server-side execution time of the call's statements (SHOW PROFILES), which
    # leaves out the client and the waits for a CPU on a shared machine.
    server_p50_ms: float | None = None
    server_p99_ms: float | None = None


def lemma(index: int) -> str:
    return f"kw{index:03d}"


class Catalogue:
    """Deterministic synthetic catalogue: which keywords each story has."""

    def __init__(self, size: int, seed: int = 7) -> None:
        self.size = size
        self.rng = random.Random(seed)
        weights = [1.0 / (i + 1) for i in range(KEYWORDS)]
        self.cumulative = list(itertools.accumulate(weights))

    def zipf_keyword(self, rng: random.Random) -> int:
        return bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])

    def rows(self) -> Iterator[tuple[tuple, list[tuple], list[tuple]]]:
        """(story row, link rows, pair rows) per story, ids 1..size."""
        rng = self.rng
        now = datetime(2026, 1, 1)
        for story_id in range(1, self.size + 1):
            locale = "en-US" if rng.random() < 0.9 else "en-GB"
            roll = rng.random()
            status = "approved" if roll < 0.9 else ("pending" if roll < 0.97 else "rejected")
            random_key = rng.randrange(RANDOM_KEY_SPACE)
            keyword_ids = {self.zipf_keyword(rng) + 1 for _ in range(rng.randint(1, 3))}
            digest = hashlib.sha256(str(story_id).encode()).hexdigest()
            story = (
                story_id,
                f"Story {story_id}",
                TEXT,
                locale,
                52,
                "generated",
                status,
                digest,
                random_key,
                now,
            )
            approved = status == "approved"
            ordered = sorted(keyword_ids)  # lemma order == id order for kw000..kw499
            links = [(story_id, k, locale, approved, random_key) for k in ordered]
            pairs = [
                (story_id, a, b, locale, approved, random_key)
                for i, a in enumerate(ordered)
                for b in ordered[i + 1 :]
            ]
            yield story, links, pairs


STORY_COLUMNS = (
    "id, title, text, locale, word_count, source, review_status, content_hash, random_key, "
    "created_at"
)
LINK_COLUMNS = "story_id, keyword_id, locale, approved, random_key"
PAIR_COLUMNS = "story_id, first_keyword_id, second_keyword_id, locale, approved, random_key"


def _placeholders(count: int, style: str) -> str:
    return ", ".join([style] * count)


def bulk_load(engine: Engine, catalogue: Catalogue) -> tuple[float, list[list[int]]]:
    """Load keywords, stories and links with executemany (multi-row INSERTs on pymysql)."""
    mysql = engine.dialect.name in {"mysql", "mariadb"}
    mark = "%s" if mysql else "?"
    started = time.perf_counter()
    story_keywords: list[list[int]] = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if mysql:
            cursor.execute("SET SESSION unique_checks = 0")
            cursor.execute("SET SESSION foreign_key_checks = 0")
        else:
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("BEGIN")
        now = datetime(2026, 1, 1)
        cursor.executemany(
            f"INSERT INTO keywords (id, lemma, created_at) VALUES ({mark}, {mark}, {mark})",
            [(i + 1, lemma(i), now) for i in range(KEYWORDS)],
        )
        story_sql = f"INSERT INTO stories ({STORY_COLUMNS}) VALUES ({_placeholders(10, mark)})"
        link_sql = f"INSERT INTO story_keywords ({LINK_COLUMNS}) VALUES ({_placeholders(5, mark)})"
        pair_sql = (
            f"INSERT INTO story_keyword_pairs ({PAIR_COLUMNS}) VALUES ({_placeholders(6, mark)})"
        )
        stories: list[tuple] = []
        links: list[tuple] = []
        pairs: list[tuple] = []
        approved_counts: Counter[int] = Counter()
        for story, story_links, story_pairs in catalogue.rows():
            stories.append(story)
            links.extend(story_links)
            pairs.extend(story_pairs)
            approved_counts.update(link[1] for link in story_links if link[3])
            if len(story_links) >= 2:
                story_keywords.append([link[1] for link in story_links])
            if len(stories) >= CHUNK:
                cursor.executemany(story_sql, stories)
                cursor.executemany(link_sql, links)
                cursor.executemany(pair_sql, pairs)
                stories, links, pairs = [], [], []
                if mysql:
                    raw.commit()
        if stories:
            cursor.executemany(story_sql, stories)
            cursor.executemany(link_sql, links)
            if pairs:
                cursor.executemany(pair_sql, pairs)
        # keywords.story_count, as db.store.add_story would have maintained it.
        cursor.executemany(
            f"UPDATE keywords SET story_count = {mark} WHERE id = {mark}",
            [(count, keyword_id) for keyword_id, count in approved_counts.items()],
        )
        raw.commit()
        cursor.close()
    finally:
        raw.close()
    return time.perf_counter() - started, story_keywords


def add_history(engine: Engine, size: int) -> None:
    """A listener who has heard HISTORY random stories, so exclusion is exercised."""
    rng = random.Random(3)
    factory = session_factory(engine)
    with factory() as session:
        store.save_listener_attributes(session, LISTENER, {"bench": True})
        start = datetime(2026, 1, 1)
        from db.models import PlayHistory

        session.add_all(
            PlayHistory(
                listener_key=LISTENER,
                story_id=rng.randint(1, size),
                played_at=start + timedelta(minutes=i),
                finished=True,
            )
            for i in range(HISTORY)
        )
        session.commit()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def run_cases(
    engine: Engine,
    backend: str,
    size: int,
    cases: Sequence[Case],
    queries: int,
    length: str | None = None,
) -> list[Result]:
    """Time choose_story end to end (session checkout to close), as the skill calls it."""
    factory = session_factory(engine)
    results = []
    for case in cases:
        rng = random.Random(11)
        timings: list[float] = []
        matches: Counter[str] = Counter()
        for i in range(queries + queries // 10):
            keywords = case.make_keywords(rng)
            started = time.perf_counter()
            with factory() as session:
                choice = store.choose_story(
                    session, keywords, LISTENER, "en-US", rng, length=length
                )
            elapsed = time.perf_counter() - started
            if i >= queries // 10:  # the first 10% warm caches
                timings.append(elapsed * 1000)
                matches[choice.match] += 1
        result = Result(
            backend=backend,
            stories=size,
            case=case.label,
            p50_ms=statistics.median(timings),
            p99_ms=_percentile(timings, 0.99),
            max_ms=max(timings),
            matches=matches,
        )
        if backend == "mysql":
            server = server_times(engine, case, queries)
            result.server_p50_ms = statistics.median(server)
            result.server_p99_ms = _percentile(server, 0.99)
        results.append(result)
        log.info("%s %d %s: p50 %.2f ms", backend, size, case.label, result.p50_ms)
    return results


def server_times(engine: Engine, case: Case, queries: int) -> list[float]:
    """Per call, the summed server-side durations of its statements (MySQL SHOW PROFILES)."""
    from sqlalchemy.orm import Session

    rng = random.Random(13)
    times: list[float] = []
    with engine.connect() as connection:
        connection.exec_driver_sql("SET profiling = 1, profiling_history_size = 100")
        connection.commit()
        last = 0
        for _ in range(queries):
            with Session(bind=connection) as session:
                store.choose_story(session, case.make_keywords(rng), LISTENER, "en-US", rng)
            profiles = connection.exec_driver_sql("SHOW PROFILES").all()
            connection.rollback()
            times.append(sum(float(p[1]) for p in profiles if p[0] > last) * 1000)
            last = max((p[0] for p in profiles), default=last)
    return times


def explain_plans(engine: Engine) -> list[str]:
    """The database's plan for each pick shape: evidence of index range scans, no full scans."""
    from db.store.choosing import _pick_statement

    params = {
        "k0": 1,
        "k1": 2,
        "locale": "en-US",
        "listener": LISTENER,
        "start": 2**30,
        "choice": 0,
    }
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    lines = []
    with engine.connect() as connection:
        for count in (0, 1, 2):
            stmt = _pick_statement(count, 8, True, engine.dialect.name).params(
                **{k: v for k, v in params.items() if not k.startswith("k") or int(k[1]) < count}
            )
            sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
            for row in connection.exec_driver_sql(prefix + sql):
                lines.append(f"  {count} kw: " + " | ".join(str(v) for v in row))
    return lines


def make_cases(catalogue: Catalogue, pairs: list[list[int]]) -> list[Case]:
    def zipf(rng: random.Random) -> str:
        return lemma(catalogue.zipf_keyword(rng))

    def pair(rng: random.Random) -> list[str]:
        ids = rng.choice(pairs)
        first, second = rng.sample(ids, 2)
        return [lemma(first - 1), lemma(second - 1)]

    return [
        Case("0 kw", lambda rng: []),
        Case("1 kw", lambda rng: [zipf(rng)]),
        Case("2 kw (co-occurring)", pair),
        Case("2 kw (random pair)", lambda rng: [zipf(rng), zipf(rng)]),
    ]


def prepare(backend: str, mysql_server: str, workdir: Path) -> tuple[Engine, Callable[[], None]]:
    """A fresh empty database with the schema; returns (engine, drop function)."""
    if backend == "sqlite":
        path = workdir / "bench.sqlite3"
        path.unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine)

        def drop() -> None:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return engine, drop
    server = make_engine(mysql_server)
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}"))
        connection.execute(
            text(
                f"CREATE DATABASE {BENCH_DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        )
    engine = make_engine(f"{mysql_server.rstrip('/')}/{BENCH_DATABASE}")
    Base.metadata.create_all(engine)

    def drop_mysql() -> None:
        engine.dispose()
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}"))
        server.dispose()

    return engine, drop_mysql


def print_table(results: list[Result], loads: dict[tuple[str, int], float]) -> None:
    header = (
        f"| {'backend':<7} | {'stories':>9} | {'load s':>7} | {'query':<20} | "
        f"{'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | {'srv p50':>7} | {'srv p99':>7} | matches"
    )
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|---------")
    for r in results:
        mix = ", ".join(f"{k} {v}" for k, v in sorted(r.matches.items()))
        load = loads.get((r.backend, r.stories), 0.0)
        server = (
            f"{r.server_p50_ms:>7.2f} | {r.server_p99_ms:>7.2f}"
            if r.server_p50_ms is not None and r.server_p99_ms is not None
            else f"{'-':>7} | {'-':>7}"
        )
        print(
            f"| {r.backend:<7} | {r.stories:>9,} | {load:>7.1f} | {r.case:<20} | "
            f"{r.p50_ms:>7.2f} | {r.p99_ms:>7.2f} | {r.max_ms:>7.2f} | {server} | {mix}"
        )


def print_summary(results: list[Result]) -> None:
    """Per backend, size and query: p50 and p99 as min / median / max over the runs."""
    runs: dict[tuple[str, int, str], list[Result]] = {}
    for r in results:
        runs.setdefault((r.backend, r.stories, r.case), []).append(r)

    def spread(values: list[float]) -> str:
        return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"

    columns = ["backend", "stories", "query", "runs"]
    columns += ["p50 ms min / median / max", "p99 ms min / median / max"]
    print("\n| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|")
    for (backend, stories, case), group in runs.items():
        print(
            f"| {backend} | {stories:,} | {case} | {len(group)} | "
            f"{spread([r.p50_ms for r in group])} | {spread([r.p99_ms for r in group])} |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,mysql", help="comma list: sqlite,mysql")
    parser.add_argument("--sizes", default="1000,100000,1000000", help="comma list of story counts")
    parser.add_argument("--queries", type=int, default=500, help="timed queries per case")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per case (the summary: min / median / max)"
    )
    parser.add_argument(
        "--mysql-server", default="mysql+pymysql://root@127.0.0.1:3306", help="server URL, no db"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--length",
        default=None,
        help="ask for this length (short/medium/long) as the skill does (it asks for 'medium' "
        "when the listener names none); every synthetic story is 52 words, so 'medium' is the "
        "worst case: no story of that length exists",
    )
    add_buffer_pool_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("db").setLevel(logging.WARNING)

    with buffer_pool(args):
        return run_all(args)


def add_buffer_pool_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--buffer-pool-mb",
        type=int,
        default=0,
        help="temporarily resize the MySQL InnoDB buffer pool (restored afterwards); 0 = as is",
    )
    parser.add_argument(
        "--warm-pool",
        action="store_true",
        help="MySQL: read every page of the story tables once before timing, as a server that "
        "has run a while (or reloaded its buffer pool dump at start-up) holds them",
    )


#: Full scans that bring the turn's tables into the InnoDB buffer pool (clustered index with
#: the story text, and the pick indexes).
WARM_STATEMENTS = (
    "SELECT SUM(CRC32(text)) FROM stories",
    "SELECT COUNT(*) FROM story_keywords FORCE INDEX (ix_story_keywords_pick)",
    "SELECT COUNT(*) FROM story_keyword_pairs FORCE INDEX (ix_story_keyword_pairs_pick)",
    "SELECT COUNT(*) FROM stories FORCE INDEX (ix_stories_pick)",
    "SELECT SUM(keyword_id) FROM story_keywords FORCE INDEX (PRIMARY)",
    "SELECT SUM(first_keyword_id) FROM story_keyword_pairs FORCE INDEX (PRIMARY)",
)


def warm_pool(engine: Engine) -> None:
    """Read the story tables once (MySQL), so timed turns meet a warm buffer pool."""
    started = time.perf_counter()
    with engine.connect() as connection:
        for statement in WARM_STATEMENTS:
            connection.exec_driver_sql(statement).all()
        status = dict(connection.exec_driver_sql(
            "SHOW GLOBAL STATUS WHERE Variable_name IN "
            "('Innodb_buffer_pool_pages_data', 'Innodb_buffer_pool_pages_total')"
        ).all())  # fmt: skip
    log.info("buffer pool warmed in %.1f s: %s of %s pages hold data",
             time.perf_counter() - started, status.get("Innodb_buffer_pool_pages_data"),
             status.get("Innodb_buffer_pool_pages_total"))  # fmt: skip


@contextlib.contextmanager
def buffer_pool(args: argparse.Namespace) -> Iterator[None]:
    """The InnoDB buffer pool at ``--buffer-pool-mb`` while the benchmark runs (MySQL only)."""
    if not (args.buffer_pool_mb and "mysql" in args.backends):
        yield
        return
    restore = set_buffer_pool(args.mysql_server, args.buffer_pool_mb * 1024 * 1024)
    try:
        yield
    finally:
        set_buffer_pool(args.mysql_server, restore)


def set_buffer_pool(server_url: str, size: int) -> int:
    """SET GLOBAL innodb_buffer_pool_size (online resize); returns the previous size."""
    server = make_engine(server_url)
    with server.connect() as connection:
        previous = int(connection.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar())
        connection.exec_driver_sql(f"SET GLOBAL innodb_buffer_pool_size = {int(size)}")
        for _ in range(600):
            status = connection.exec_driver_sql(
                "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_resize_status'"
            ).first()
            if status is None or not status[1] or "ompleted" in status[1]:
                break
            time.sleep(0.1)
        now = connection.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar()
    server.dispose()
    log.info("innodb_buffer_pool_size %d MB -> %d MB", previous >> 20, int(now) >> 20)
    return previous


def run_all(args: argparse.Namespace) -> int:
    results: list[Result] = []
    loads: dict[tuple[str, int], float] = {}
    plans: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bedtime-bench-") as tmp:
        for backend in args.backends.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                engine, drop = prepare(backend, args.mysql_server, Path(tmp))
                try:
                    log.info("loading %d stories into %s", size, masked_url(engine.url))
                    catalogue = Catalogue(size)
                    seconds, pairs = bulk_load(engine, catalogue)
                    loads[(backend, size)] = seconds
                    log.info("loaded %d stories in %.1f s", size, seconds)
                    add_history(engine, size)
                    if backend == "mysql" and args.warm_pool:
                        warm_pool(engine)
                    if backend == "mysql":
                        with engine.connect() as connection:
                            for table in (
                                "stories",
                                "story_keywords",
                                "story_keyword_pairs",
                                "keywords",
                            ):
                                connection.exec_driver_sql(f"ANALYZE TABLE {table}")
                    else:
                        with engine.begin() as connection:
                            connection.exec_driver_sql("ANALYZE")
                    for _ in range(args.runs):
                        results += run_cases(
                            engine,
                            backend,
                            size,
                            make_cases(catalogue, pairs),
                            args.queries,
                            args.length,
                        )
                    plans[backend] = explain_plans(engine)
                finally:
                    if not args.keep:
                        drop()
    print_table(results, loads)
    print_summary(results)
    for backend, lines in plans.items():
        print(f"\nquery plans on {backend} (largest size):")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

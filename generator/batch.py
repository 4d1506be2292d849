"""`bedtime generate`: the cron-friendly batch job that fills the story catalogue.

What it does, in order:

1. claims the listener-demand queue (``claim_generation_requests``: SKIP LOCKED on MySQL, a
   write lock on SQLite, so several workers never take the same request);
2. builds the plan - every keyword alone and in pairs, from the sorted keywords, so the plan
   depends only on the words - and subtracts the approved stories each set already has; a rerun
   after a successful run plans nothing;
3. claims plan sets one by one with a lease in the database (``plan_leases``) and re-reads each
   set's count under it, so any number of workers, with or without ``--shard``, never overfill a
   set; every claim is renewed while the worker works (:mod:`generator.batch_work`), given back
   on SIGTERM or Ctrl-C (unstarted requests go back to pending) and lapses after
   BEDTIME_LEASE_SECONDS (default 5 minutes) when the worker is killed;
4. generates in batches (CTranslate2 int8 with rewind-and-insert keywords when CTranslate2 is
   installed, else our batched HF loop with the keyword guide; both guarantee the keywords), runs
   every story through assembly + the safety gate, and commits each story in its own
   transaction that re-checks the lease and the set's count (a ``kill -9`` loses at most the batch
   in flight, never leaves half a story);
5. prints a summary (stories/h, tokens/s, approvals, rejection reasons).

Cron (every night at 02:15; start as many workers as you like, ``--worker-id`` names them)::

    15 2 * * * BEDTIME_DATABASE_URL=... /opt/bedtime/.venv/bin/bedtime generate --plan catalogue \
        --per-set 3 --time-limit 50 >> /var/log/bedtime-generate.log 2>&1

Importing this module is torch-free (the CLI mounts it lazily); the model loads in ``run_batch``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from generator.batch_work import Job, LeaseKeeper, WorkState, release_everything, work_loop

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
STARTER_KEYWORDS = DATA_DIR / "starter_keywords.txt"
PLANS = ("starter", "catalogue", "requests")
#: A worker's claims lapse this long after its last renewal (BEDTIME_LEASE_SECONDS in the CLI).
DEFAULT_LEASE_SECONDS = 300.0


@dataclass
class PlanItem:
    """A keyword set and how many more approved stories it needs."""

    keywords: tuple[str, ...]
    wanted: int
    have: int = 0


@dataclass
class BatchSummary:
    """What a run did; printed at the end and returned for tests."""

    generated: int = 0
    approved: int = 0
    pending: int = 0
    rejected: int = 0
    duplicates: int = 0
    dropped: int = 0
    requests_done: int = 0
    requests_failed: int = 0
    tokens: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    keywords_covered: set[str] = field(default_factory=set)
    stopped_early: str | None = None
    engine: str = ""

    @property
    def stories_per_hour(self) -> float:
        return self.generated / self.seconds * 3600 if self.seconds else 0.0

    def lines(self) -> list[str]:
        rate = self.tokens / self.seconds if self.seconds else 0.0
        out = [
            f"generated {self.generated} stories in {self.seconds:.0f}s with {self.engine} "
            f"({self.stories_per_hour:.0f} stories/h, {rate:.0f} tokens/s)",
            f"approved {self.approved}, pending review {self.pending}, rejected {self.rejected}, "
            f"already stored {self.duplicates}, dropped (set full or taken over) {self.dropped}",
            f"requests done {self.requests_done}, failed {self.requests_failed}; "
            f"keywords with new approved stories: {len(self.keywords_covered)}",
        ]
        for reason, count in self.reasons.most_common(8):
            out.append(f"  rejected {count}x: {reason}")
        if self.stopped_early:
            out.append(f"stopped early: {self.stopped_early}")
        return out


# --------------------------------------------------------------------------- planning


def read_keyword_file(path: Path = STARTER_KEYWORDS) -> list[str]:
    """Keywords one per line (``#`` comments), normalised, duplicates dropped."""
    from db.keywords import normalize_keyword

    found: list[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        word = normalize_keyword(line.split("#", 1)[0])
        if word and word not in found:
            found.append(word)
    return found


def keyword_pairs(
    keywords: Sequence[str], per_keyword: int, seed: int = 7
) -> list[tuple[str, str]]:
    """About ``per_keyword`` pairs per keyword: neighbours in a seeded shuffle (deterministic).

    Pairs are sorted tuples so "bear+moon" and "moon+bear" are one set.
    """
    n = len(keywords)
    if per_keyword <= 0 or n < 2:
        return []
    order = list(keywords)
    random.Random(seed).shuffle(order)
    target = max(1, (n * per_keyword + 1) // 2)
    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for step in range(1, n):
        for i, word in enumerate(order):
            first, second = sorted((word, order[(i + step) % n]))
            if (first, second) not in seen:
                seen.add((first, second))
                pairs.append((first, second))
            if len(pairs) >= target:
                return pairs
    return pairs


def build_plan(
    keywords: Sequence[str],
    per_set: int,
    pairs_per_keyword: int,
    existing: Counter[tuple[str, ...]],
    per_pair: int | None = None,
) -> list[PlanItem]:
    """Singles first, then pairs; only sets still short of their target."""
    items: list[PlanItem] = []
    sets: list[tuple[tuple[str, ...], int]] = [((k,), per_set) for k in keywords]
    sets += [
        (pair, per_pair if per_pair is not None else per_set)
        for pair in keyword_pairs(keywords, pairs_per_keyword)
    ]
    for key, target in sets:
        have = existing.get(tuple(sorted(key)), 0)
        if have < target:
            items.append(PlanItem(keywords=key, wanted=target - have, have=have))
    return items


def interleave_jobs(items: Sequence[PlanItem]) -> list[Job]:
    """Round-robin over sets so an interrupted run still covers many keywords."""
    jobs: list[Job] = []
    for round_index in itertools.count():
        added = False
        for item in items:
            if round_index < item.wanted:
                jobs.append(Job(item.keywords))
                added = True
        if not added:
            return jobs
    return jobs  # pragma: no cover


def shard(items: Iterable[PlanItem], index: int, count: int) -> list[PlanItem]:
    """Plan sets for worker ``index`` of ``count`` (by keyword set, stable across runs).

    Optional: the database leases keep unsharded workers apart too; sharding only saves them
    from asking for the same sets.
    """
    if count <= 1:
        return list(items)
    import zlib

    return [i for i in items if zlib.crc32("|".join(i.keywords).encode()) % count == index]


# --------------------------------------------------------------------------- the run


def model_record_id(session: Any, generator: Any) -> int | None:
    """The registry row of the model (registered if missing) so stories link to their model."""
    from db.generation_jobs import find_model

    name = generator.model_name
    found = find_model(session, name)
    if found is None:
        from generator.registry import register_model

        found = register_model(session, generator.path, name, model_class=generator.model_class)
        session.commit()
    return int(found.id)


def run_batch(
    session_factory: Callable[[], Any],
    generator: Any,
    *,
    plan: str = "catalogue",
    keywords: Sequence[str] | None = None,
    per_set: int = 3,
    per_pair: int | None = None,
    pairs_per_keyword: int = 1,
    requests: int = 50,
    batch_size: int = 16,
    max_stories: int | None = None,
    max_attempts: int = 3,
    worker_id: str | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    time_limit_s: float | None = None,
    seed: int | None = None,
    progress: bool = True,
    locale: str = "en-US",
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> BatchSummary:
    """Generate what the plan still lacks; see the module docstring."""
    from tqdm import tqdm

    summary = BatchSummary(engine=generator.engine)
    started = time.monotonic()
    worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    lease = timedelta(seconds=lease_seconds)
    keeper = LeaseKeeper(session_factory, worker_id, locale, lease)
    bar = tqdm(unit="story", disable=not progress, smoothing=0.1)

    def on_story() -> None:
        bar.update(1)
        bar.set_postfix(ok=summary.approved + summary.pending, rej=summary.rejected)

    try:  # from the first claim on, a stop (SIGTERM, Ctrl-C) or a crash gives everything back
        with session_factory() as session:
            model_id = model_record_id(session, generator)
            limit = min(requests, max_stories) if max_stories is not None else requests
            request_jobs = _claim_requests(session, worker_id, limit, lease, locale, summary)
            keeper.hold(requests=[j.request_id for j in request_jobs if j.request_id is not None])
            items = _plan_items(
                session, plan, keywords, per_set, per_pair, pairs_per_keyword, locale
            )
        items = shard(items, shard_index, shard_count)
        logger.info("%d queue requests, %d plan sets to check", len(request_jobs), len(items))
        state = WorkState(
            session_factory=session_factory,
            generator=generator,
            worker_id=worker_id,
            locale=locale,
            lease=lease,
            keeper=keeper,
            model_id=model_id,
            max_attempts=max_attempts,
            request_jobs=request_jobs,
            plan=iter([(i.keywords, i.wanted + i.have) for i in items]),
        )
        with keeper:
            work_loop(
                state,
                summary,
                batch_size=batch_size,
                max_stories=max_stories,
                deadline=started + time_limit_s if time_limit_s is not None else None,
                rng=random.Random(seed),
                on_story=on_story,
            )
    except KeyboardInterrupt:
        summary.stopped_early = "interrupted"
    finally:
        bar.close()
        release_everything(session_factory, worker_id)
        summary.seconds = time.monotonic() - started
    return summary


def _claim_requests(
    session: Any, worker_id: str, limit: int, lease: timedelta, locale: str, summary: BatchSummary
) -> list[Job]:
    """Claim listener requests (committed); refuse at once the ones we can never serve."""
    from db.store import claim_generation_requests, complete_generation_request

    claimed = claim_generation_requests(session, worker_id, limit, lease) if limit > 0 else []
    request_jobs, refused = _triage_requests(claimed, locale)
    for request_id, reason in refused:
        complete_generation_request(session, request_id, None, reason)
        summary.requests_failed += 1
    session.commit()
    return request_jobs


def _plan_items(
    session: Any,
    plan: str,
    keywords: Sequence[str] | None,
    per_set: int,
    per_pair: int | None,
    pairs_per_keyword: int,
    locale: str,
) -> list[PlanItem]:
    """The plan's sets still short of their targets, in one order that depends only on the words.

    Sorting the words first makes the pairs independent of story counts (known_keywords orders
    by count), so a rerun after success plans nothing.
    """
    from db.generation_jobs import approved_counts
    from db.store import known_keywords

    if plan == "requests":
        words: list[str] = []
    elif plan == "starter" or keywords:
        words = list(keywords or read_keyword_file())
    else:
        words = known_keywords(session, locale=locale)
    return build_plan(
        sorted(set(words)), per_set, pairs_per_keyword, approved_counts(session), per_pair
    )


def _triage_requests(claimed: Sequence[Any], locale: str) -> tuple[list[Job], list[Any]]:
    """Jobs for the claimed requests we can serve; (id, reason) for those we must refuse.

    A keyword the shared request policy redirects ("zombie") is refused at once instead of
    burning attempts on stories that can never pass.
    """
    from safety import first_redirect

    jobs: list[Job] = []
    refused: list[tuple[int, str]] = []
    for request in claimed:
        keywords = tuple(request.keywords)
        redirect = first_redirect(keywords)
        if request.locale != locale:
            refused.append((request.id, f"no story model for locale {request.locale}"))
        elif not keywords:
            refused.append((request.id, "no keywords"))
        elif redirect is not None:
            refused.append(
                (request.id, f"keyword redirected by the request policy: {redirect.line()}")
            )
        else:
            jobs.append(Job(keywords, request.id))
    return jobs, refused


def export_catalogue(
    session_factory: Callable[[], Any],
    out_path: Path,
    model_name: str | None = None,
    keep_handwritten: bool = True,
) -> int:
    """Write approved generated stories as JSONL (the format ``db/catalogue.py`` reads).

    With ``keep_handwritten``, lines of an existing file whose source is not "generated" (the
    hand-written starter stories) are kept at the top. Returns the generated stories written.
    """
    from db.generation_jobs import generated_catalogue
    from generator.artifacts import atomic_write_text

    kept: list[str] = []
    if keep_handwritten and Path(out_path).exists():
        for line in Path(out_path).read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("source") not in (None, "generated"):
                kept.append(line)
    with session_factory() as session:
        records = generated_catalogue(session, model_name)
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    atomic_write_text(out_path, "".join(line + "\n" for line in kept + lines))
    return len(lines)


# --------------------------------------------------------------------------- CLI


def _stop_cleanly_on_sigterm() -> None:
    """Kubernetes/cron stop a job with SIGTERM: treat it like Ctrl-C (summary, requests given
    back); the story being stored is rolled back whole either way."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    with contextlib.suppress(ValueError):  # not the main thread (tests): keep the default
        signal.signal(signal.SIGTERM, handler)


def _parse_shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in value.split("/", 1))
    except ValueError as exc:
        raise click.BadParameter("use I/N, e.g. 0/2") from exc
    if not 0 <= index < count:
        raise click.BadParameter("need 0 <= I < N")
    return index, count


@click.command("generate")
@click.option(
    "--model",
    "model_path",
    default="shipped",
    show_default=True,
    help="Model directory, registry name, or 'shipped'.",
)
@click.option(
    "--plan",
    type=click.Choice(PLANS),
    default="catalogue",
    show_default=True,
    help="starter: keywords from generator/data/starter_keywords.txt; catalogue: "
    "keywords that have stories; requests: only the listener-demand queue.",
)
@click.option(
    "--keywords-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Plan over these keywords (one per line) instead.",
)
@click.option("--per-set", default=3, show_default=True, help="Target stories per keyword.")
@click.option("--per-pair", type=int, help="Target stories per keyword pair [default: --per-set].")
@click.option(
    "--pairs-per-keyword", default=1, show_default=True, help="Pairs each keyword takes part in."
)
@click.option(
    "--requests",
    "request_limit",
    default=50,
    show_default=True,
    help="Listener requests to claim first (0: none).",
)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--max-stories", type=int, help="Stop after this many generations.")
@click.option(
    "--max-attempts",
    default=3,
    show_default=True,
    help="Generations allowed per wanted story before a set (or request) gives up.",
)
@click.option("--time-limit", type=float, help="Minutes; stop cleanly after this.")
@click.option(
    "--engine",
    type=click.Choice(["auto", "hf", "ct2"]),
    default="auto",
    show_default=True,
    help="auto: CTranslate2 int8 (<model>/ct2 or a cached conversion) when installed.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="StoryConfig JSON (sampling, lengths, filters).",
)
@click.option("--threads", type=int, help="CPU threads for the model.")
@click.option("--seed", type=int)
@click.option("--worker-id", help="Name in the request claims [default: host:pid].")
@click.option(
    "--shard",
    "shard_spec",
    default="0/1",
    show_default=True,
    help="I/N: this worker's share of the plan when N workers run it (optional: workers "
    "without it share the plan through database leases).",
)
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Afterwards, write approved generated stories to this JSONL.",
)
@click.option(
    "--keep-handwritten/--no-keep-handwritten",
    default=True,
    show_default=True,
    help="With --export: keep the non-generated lines already in the file.",
)
@click.option("--database-url", help="SQLAlchemy URL [default: BEDTIME_DATABASE_URL, else SQLite].")
@click.option("--no-progress", is_flag=True, help="No progress bar (cron logs).")
def generate_command(
    model_path: str,
    plan: str,
    keywords_file: Path | None,
    per_set: int,
    per_pair: int | None,
    pairs_per_keyword: int,
    request_limit: int,
    batch_size: int,
    max_stories: int | None,
    max_attempts: int,
    time_limit: float | None,
    engine: str,
    config_path: str | None,
    threads: int | None,
    seed: int | None,
    worker_id: str | None,
    shard_spec: str,
    export_path: Path | None,
    keep_handwritten: bool,
    database_url: str | None,
    no_progress: bool,
) -> None:
    """Generate stories for the catalogue and the listener-demand queue (safe to re-run)."""
    from db.engine import (
        DatabaseUnavailable,
        SchemaNotCurrent,
        make_engine,
        require_current_schema,
        session_factory,
    )
    from generator.generation.config import StoryConfig
    from settings import Settings

    settings = Settings.from_env()
    if not no_progress:
        logging.getLogger("db.store").setLevel(logging.WARNING)  # one line per story: too noisy
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    shard_index, shard_count = _parse_shard(shard_spec)
    url = database_url or settings.database_url
    # READ COMMITTED on MySQL: workers' lease and story transactions take no gap locks, so they
    # rarely deadlock each other (the ones that do are retried).
    mysql = url.startswith(("mysql", "mariadb"))
    engine_db = make_engine(url, **({"isolation_level": "READ COMMITTED"} if mysql else {}))
    try:
        require_current_schema(engine_db)
    except (DatabaseUnavailable, SchemaNotCurrent) as exc:
        raise click.ClickException(str(exc)) from None
    factory = session_factory(engine_db)
    config = StoryConfig.from_json(config_path) if config_path else None
    from generator.generation.factory import open_story_generator

    try:
        generator = open_story_generator(
            model_path,
            config,
            engine=engine,
            require_human_review=settings.require_human_review,
            threads=threads,
        )
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    words = read_keyword_file(keywords_file) if keywords_file else None
    _stop_cleanly_on_sigterm()
    summary = run_batch(
        factory,
        generator,
        plan=plan,
        keywords=words,
        per_set=per_set,
        per_pair=per_pair,
        pairs_per_keyword=pairs_per_keyword,
        requests=request_limit,
        batch_size=batch_size,
        max_stories=max_stories,
        max_attempts=max_attempts,
        worker_id=worker_id,
        shard_index=shard_index,
        shard_count=shard_count,
        time_limit_s=time_limit * 60 if time_limit else None,
        seed=seed,
        progress=not no_progress,
        locale=settings.default_locale,
        lease_seconds=settings.lease_seconds,
    )
    for line in summary.lines():
        click.echo(line)
    if export_path is not None:
        count = export_catalogue(factory, export_path, keep_handwritten=keep_handwritten)
        click.echo(f"exported {count} approved generated stories to {export_path}")


if __name__ == "__main__":  # python -m generator.batch ... (same options as `bedtime generate`)
    generate_command()

"""``bedtime db|stories|keywords``: schema migrations and catalogue curation from the shell.

Every user error (bad URL, unreachable server, schema not migrated, unknown id, bad file) ends as
a one-line ``click.ClickException`` naming the fix, never a traceback. Passwords are masked.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from db.models import Keyword, KeywordSynonym, ReviewStatus, StoryKeyword, StorySource

log = logging.getLogger(__name__)

CONTEXT = {"help_option_names": ["-h", "--help"]}
_url_option = click.option(
    "--database-url",
    default=None,  # None: make_engine asks settings (BEDTIME_DATABASE_URL, else SQLite)
    metavar="URL",
    help="Database to use (default: BEDTIME_DATABASE_URL, else the local SQLite file).",
)


def _engine(url: str | None, check: bool = True) -> Engine:
    from db.engine import DatabaseUnavailable, check_database, make_engine

    try:
        engine = make_engine(url)
        if check:
            check_database(engine)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    return engine


@contextmanager
def _session(url: str | None) -> Iterator[Session]:
    """A session whose database errors become one-line hints; rolled back on any error."""
    from db.engine import masked_url, session_factory

    engine = _engine(url)
    try:
        with session_factory(engine)() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", exc)).split())[:300]
        raise click.ClickException(
            f"Database error on {masked_url(engine.url)}: {reason}. "
            "If the schema is missing or old, run: bedtime db upgrade"
        ) from None
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- bedtime db


@click.group("db", context_settings=CONTEXT)
def db_group() -> None:
    """Create, migrate and check the story database schema."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@_url_option
def upgrade_command(revision: str, database_url: str | None) -> None:
    """Migrate the schema up to REVISION (default: the latest)."""
    from db.engine import current_revision, masked_url, upgrade_database

    engine = _engine(database_url)
    try:
        upgrade_database(engine, revision)
        click.echo(f"{masked_url(engine.url)} is at revision {current_revision(engine)}")
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"Migration failed, nothing half-applied was kept: {exc}"
        ) from None
    finally:
        engine.dispose()


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_url_option
def downgrade_command(revision: str, yes: bool, database_url: str | None) -> None:
    """Migrate the schema down to REVISION ("base" drops every table and its data)."""
    from db.engine import current_revision, downgrade_database, masked_url

    engine = _engine(database_url)
    if not yes:
        click.confirm(
            f"Downgrade {masked_url(engine.url)} to {revision}? Data in dropped tables is lost",
            abort=True,
        )
    try:
        downgrade_database(engine, revision)
        click.echo(f"{masked_url(engine.url)} is at revision {current_revision(engine) or 'base'}")
    except SQLAlchemyError as exc:
        raise click.ClickException(f"Downgrade failed: {exc}") from None
    finally:
        engine.dispose()


@db_group.command("check")
@_url_option
def check_command(database_url: str | None) -> None:
    """Check the database is reachable, migrated to the latest revision and matches the models."""
    from db.engine import current_revision, head_revision, masked_url, schema_differences

    engine = _engine(database_url)
    try:
        current, head = current_revision(engine), head_revision()
        shown = masked_url(engine.url)
        if current != head:
            raise click.ClickException(
                f"{shown} is at revision {current or 'none (empty)'}, latest is {head}: "
                "run bedtime db upgrade"
            )
        differences = schema_differences(engine)
        if differences:
            for difference in differences:
                click.echo(f"  differs: {difference}", err=True)
            raise click.ClickException(f"{shown}: schema does not match the models")
        click.echo(f"{shown}: reachable, at revision {current}, schema matches the models")
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- bedtime stories


@click.group("stories", context_settings=CONTEXT)
def stories_group() -> None:
    """Import, export, list and review stories."""


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


@stories_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--status",
    "default_status",
    type=click.Choice([s.value for s in ReviewStatus]),
    default=ReviewStatus.PENDING.value,
    show_default=True,
    help="Review status for lines that do not give one.",
)
@click.option(
    "--source",
    "default_source",
    type=click.Choice([s.value for s in StorySource]),
    default=StorySource.IMPORTED.value,
    show_default=True,
    help="Source for lines that do not give one.",
)
@click.option("--strict", is_flag=True, help="Exit with status 1 if any line was invalid.")
@click.option(
    "--trust",
    is_flag=True,
    help="Keep approved lines approved even when the safety gate flags them (logged).",
)
@_url_option
def import_command(
    file: Path,
    default_status: str,
    default_source: str,
    strict: bool,
    trust: bool,
    database_url: str | None,
) -> None:
    """Import stories from FILE, JSON Lines: one {"title", "text", "keywords", ...} per line.

    Invalid lines are reported with their line numbers and skipped; valid ones are kept.
    Importing the same file again adds nothing. Every story passes the safety gate: an approved
    line that fails is kept pending with the reasons (unless --trust).
    """
    from tqdm import tqdm

    from db.catalogue import import_lines

    total = _count_lines(file)
    bar = tqdm(total=total, unit="line", desc="importing", disable=None, file=sys.stderr)
    with _session(database_url) as session, file.open("rb") as handle, bar:
        report = import_lines(
            session,
            handle,
            default_source=default_source,
            default_status=default_status,
            commit_every=200,
            on_line=lambda _n: bar.update(1),
            trust=trust,
        )
    for number, reason in report.errors:
        click.echo(f"{file}:{number}: {reason}", err=True)
    for number, reason in report.held:
        click.echo(f"{file}:{number}: held for review: {reason}", err=True)
    click.echo(f"{file}: {report.summary()}")
    if strict and report.errors:
        sys.exit(1)


@stories_group.command("import-starter")
@_url_option
def import_starter_command(database_url: str | None) -> None:
    """Load the starter catalogue shipped with the package (idempotent)."""
    from db.catalogue import load_starter_catalogue

    with _session(database_url) as session:
        added = load_starter_catalogue(session)
        session.commit()
    click.echo(f"starter catalogue: {added} stories added")


@stories_group.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8", lazy=True), default="-")
@_url_option
def export_command(file: IO[str], database_url: str | None) -> None:
    """Write every story as JSON Lines to FILE (default: standard output)."""
    from db.catalogue import story_to_json
    from db.store import iter_stories

    count = 0
    with _session(database_url) as session:
        for story in iter_stories(session):
            file.write(story_to_json(story) + "\n")
            count += 1
    click.echo(f"exported {count} stories", err=True)


@stories_group.command("list")
@click.option("--keyword", "-k", help="Only stories with this keyword (any form: 'dragons').")
@click.option("--status", "-s", type=click.Choice([s.value for s in ReviewStatus]))
@click.option("--limit", "-n", type=click.IntRange(min=1), default=50, show_default=True)
@_url_option
def list_command(
    keyword: str | None, status: str | None, limit: int, database_url: str | None
) -> None:
    """List stories, newest first."""
    from db.store import list_stories

    with _session(database_url) as session:
        stories = list_stories(session, keyword=keyword, status=status, limit=limit)
        if not stories:
            click.echo("no stories match", err=True)
        for story in stories:
            keywords = ", ".join(story.keyword_lemmas)
            click.echo(
                f"{story.id:>7}  {story.review_status:<8}  {story.locale:<6}  "
                f"{story.title}  [{keywords}]"
            )


@stories_group.command("approve")
@click.argument("story_id", type=int)
@click.option("--force", is_flag=True, help="Approve even when the safety gate flags the story.")
@_url_option
def approve_command(story_id: int, force: bool, database_url: str | None) -> None:
    """Approve story STORY_ID so it can be served, after the safety gate has judged it.

    Prints the verdict; a flagged story needs --force (kept on the story's review trail).
    """
    from db.store import FlaggedStory, approve_story

    with _session(database_url) as session:
        try:
            story, verdict = approve_story(session, story_id, force=force)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        except FlaggedStory as exc:
            session.commit()  # the verdict stays on the trail
            click.echo(f"safety: {exc.verdict.line()}")
            raise click.ClickException(
                f"story {story_id} is flagged by the safety gate; approve it with --force"
            ) from None
        session.commit()
        click.echo(f"safety: {verdict.line()}")
        forced = " (forced past the safety gate)" if not verdict.ok else ""
        click.echo(f"story {story.id} ({story.title}) is now approved{forced}")


@stories_group.command("recheck")
@click.option(
    "--status",
    "-s",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in ReviewStatus]),
    default=[ReviewStatus.APPROVED.value, ReviewStatus.PENDING.value],
    show_default=True,
    help="Which stories to judge (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Judge and report, change nothing.")
@click.option("--words-only", is_flag=True, help="Skip the meaning check (no model needed).")
@_url_option
def recheck_command(
    statuses: tuple[str, ...], dry_run: bool, words_only: bool, database_url: str | None
) -> None:
    """Judge the whole catalogue with today's safety gate; withdraw approved stories that fail.

    Withdrawn stories are kept (status 'withdrawn', with the reasons) and never served. Every
    verdict goes on the story's review trail with the checker's version.
    """
    from tqdm import tqdm

    from db.models import Story
    from db.store import recheck_stories
    from safety import check_stories

    def gate(stories: list[tuple[str, str]]) -> list:
        return check_stories(stories, meaning=False if words_only else None)

    with _session(database_url) as session:
        total = session.scalar(
            select(func.count(Story.id)).where(Story.review_status.in_(statuses))
        )
        with tqdm(
            total=total, unit="story", desc="rechecking", disable=None, file=sys.stderr
        ) as bar:
            report = recheck_stories(session, statuses=statuses, gate=gate, on_batch=bar.update)
        for story_id, title, reason in report.withdrawn:
            click.echo(f"withdrawn {story_id} ({title}): {reason}")
        if dry_run:
            session.rollback()
        else:
            session.commit()
    click.echo(f"recheck: {report.summary()}{' (dry run: nothing changed)' if dry_run else ''}")
    for category, count in sorted(report.categories.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {category}: {count}")


@stories_group.command("reviews")
@click.argument("story_id", type=int)
@_url_option
def reviews_command(story_id: int, database_url: str | None) -> None:
    """Show story STORY_ID's safety review trail, oldest first."""
    from db.store import reviews_of

    with _session(database_url) as session:
        trail = reviews_of(session, story_id)
        if not trail:
            click.echo(f"no safety reviews for story {story_id}", err=True)
        for review in trail:
            reason = review.reasons.get("reason") or "ok"
            click.echo(
                f"{review.created_at:%Y-%m-%d %H:%M}  {review.action:<9}  "
                f"{review.checker}  {reason}"
            )


@stories_group.command("reject")
@click.argument("story_id", type=int)
@click.option("--reason", "-r", required=True, help="Why (kept with the story).")
@_url_option
def reject_command(story_id: int, reason: str, database_url: str | None) -> None:
    """Reject story STORY_ID so it is never served."""
    _review(database_url, story_id, ReviewStatus.REJECTED.value, reason)


def _review(database_url: str | None, story_id: int, status: str, reason: str | None) -> None:
    from db.store import review_story

    with _session(database_url) as session:
        try:
            story = review_story(session, story_id, status, reason)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"story {story.id} ({story.title}) is now {status}")


# --------------------------------------------------------------------------- bedtime keywords


@click.group("keywords", context_settings=CONTEXT)
def keywords_group() -> None:
    """List keywords and manage their synonyms."""


@keywords_group.command("list")
@_url_option
def keywords_list_command(database_url: str | None) -> None:
    """List keywords with their number of approved stories and synonyms."""
    with _session(database_url) as session:
        approved = (
            select(func.count(StoryKeyword.story_id))
            .where(StoryKeyword.keyword_id == Keyword.id, StoryKeyword.approved.is_(True))
            .scalar_subquery()
        )
        rows = session.execute(select(Keyword, approved).order_by(Keyword.lemma)).all()
        synonyms: dict[int, list[str]] = {}
        for keyword_id, synonym in session.execute(
            select(KeywordSynonym.keyword_id, KeywordSynonym.synonym).order_by(
                KeywordSynonym.synonym
            )
        ):
            synonyms.setdefault(keyword_id, []).append(synonym)
        if not rows:
            click.echo("no keywords yet", err=True)
        for keyword, count in rows:
            extra = (
                f"  (synonyms: {', '.join(synonyms[keyword.id])})" if keyword.id in synonyms else ""
            )
            click.echo(f"{keyword.lemma:<30} {count:>7}{extra}")


@keywords_group.command("add-synonym")
@click.argument("lemma")
@click.argument("synonym")
@_url_option
def add_synonym_command(lemma: str, synonym: str, database_url: str | None) -> None:
    """Make SYNONYM mean keyword LEMMA (e.g. add-synonym cat kitty)."""
    from db.store import add_synonym

    with _session(database_url) as session:
        try:
            entry = add_synonym(session, lemma, synonym)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"{entry.synonym!r} now means {entry.keyword.lemma!r}")


@keywords_group.command("recount")
@_url_option
def recount_command(database_url: str | None) -> None:
    """Recompute each keyword's approved-story count (after bulk loads or manual SQL edits)."""
    from db.store import refresh_keyword_counts

    with _session(database_url) as session:
        refresh_keyword_counts(session)
        session.commit()
    click.echo("keyword story counts recomputed")

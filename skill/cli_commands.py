"""``bedtime serve`` and ``bedtime run``: the skill's web endpoint from the command line.

``run`` is the one command a parent needs (README): migrate, load the starter stories, serve.
Imports of Flask/ASK happen inside the commands so ``bedtime --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def _settings(no_verify: bool) -> Settings:
    """Settings from the environment, checked for serving: a clear error, never a traceback."""
    from settings import ConfigurationError, Settings

    try:
        settings = Settings.from_env()
        if no_verify:
            settings = dataclasses.replace(settings, verify_requests=False)
        settings.require_endpoint_ready()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


def _serve(settings: Settings, host: str, port: int) -> None:
    """gunicorn with threaded workers, as the Docker image runs it (skill/server.py)."""
    from db.engine import DatabaseUnavailable, check_database, make_engine
    from skill.server import gunicorn_options, serve

    try:
        engine = make_engine(settings.database_url)
        try:
            check_database(engine)  # fail here, once, not in every worker
        finally:
            engine.dispose()
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    options = gunicorn_options(settings, f"{host}:{port}")
    click.echo(
        f"Bedtime Stories skill listening on http://{host}:{port}/alexa "
        f"(health: http://{host}:{port}/healthz; gunicorn, {options['workers']} workers x "
        f"{options['threads']} threads)"
    )
    if settings.console_enabled:
        click.echo(f"Operator's console on http://{host}:{port}/console (API: /api/v1)")
    serve(settings, host, port)


_host = click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Interface to listen on (0.0.0.0 for all).",
)
_port = click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="TCP port.")
_no_verify = click.option(
    "--no-verify",
    is_flag=True,
    help="Skip Alexa signature/timestamp/skill-id checks. Local simulators only, never public.",
)


@click.command("serve")
@_host
@_port
@_no_verify
def serve_command(host: str, port: int, no_verify: bool) -> None:
    """Serve the skill endpoint (POST /alexa) under gunicorn."""
    settings = _settings(no_verify)
    require_current_schema(settings)
    _serve(settings, host, port)


def require_current_schema(settings: Settings) -> None:
    """Refuse to serve a database that was never upgraded: every request would fail later."""
    from db.engine import (
        DatabaseUnavailable,
        SchemaNotCurrent,
        make_engine,
    )
    from db.engine import require_current_schema as require_schema

    engine = make_engine(settings.database_url)
    try:
        require_schema(
            engine,
            "Run `bedtime db upgrade` first (or `bedtime run`, which also loads the stories).",
        )
    except (DatabaseUnavailable, SchemaNotCurrent) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@click.command("run")
@_host
@_port
@_no_verify
def run_command(host: str, port: int, no_verify: bool) -> None:
    """Upgrade the database, load the starter stories, then serve the skill."""
    settings = _settings(no_verify)
    prepare(settings)
    _serve(settings, host, port)


def prepare(settings: Settings) -> None:
    """What a first run needs: the schema, the starter stories, the sleep sounds (with sox)."""
    from db.catalogue import load_starter_catalogue
    from db.engine import (
        DatabaseUnavailable,
        check_database,
        make_engine,
        session_factory,
        upgrade_database,
    )
    from skill.sleep_sounds import SoundBuildError, build_sounds

    try:
        engine = make_engine(settings.database_url)
        try:
            check_database(engine)
            upgrade_database(engine)
            with session_factory(engine)() as session:
                added = load_starter_catalogue(session)
                synonyms = seed_synonyms(session)
                session.commit()
        finally:
            engine.dispose()
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Database ready; {added} starter stories added, {synonyms} synonyms known.")
    try:
        build_sounds(settings.sounds_dir)
    except (SoundBuildError, OSError) as exc:
        click.echo(f"Sleep sounds not built ({exc}); stories work without them.")


def seed_synonyms(session: Session) -> int:
    """The interaction model's keyword synonyms into the store (skips ones that clash)."""
    from db.store import add_synonym
    from skill.package import keyword_synonyms

    known = 0
    for lemma, synonym in keyword_synonyms():
        try:
            with session.begin_nested():
                add_synonym(session, lemma, synonym)
            known += 1
        except ValueError:
            continue  # a plural of the keyword itself, or a keyword in its own right
    return known


@click.group("sounds")
def sounds_group() -> None:
    """The sleep sounds (rain, ocean) the skill streams after goodnight."""


@sounds_group.command("build")
@click.option("--force", is_flag=True, help="Rebuild files that already exist.")
def build_sounds_command(force: bool) -> None:
    """Synthesise the sleep sounds with sox into BEDTIME_SOUNDS_DIR (default <data dir>/sounds)."""
    from settings import Settings
    from skill.sleep_sounds import SoundBuildError, build_sounds

    settings = Settings.from_env()
    try:
        built = build_sounds(settings.sounds_dir, force=force)
    except (SoundBuildError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{len(built)} sleep sounds in {settings.sounds_dir}: "
        + ", ".join(path.name for path in built)
    )
    if not settings.public_url:
        click.echo(
            "Note: set BEDTIME_PUBLIC_URL (or BEDTIME_ENDPOINT_URI) to the HTTPS address of this "
            "service, or Alexa cannot stream them."
        )


@click.command("talk")
@click.option("--speak", is_flag=True, help="Read the answers aloud with espeak-ng.")
@click.option("--locale", default="en-US", show_default=True, help="Locale to talk in.")
def talk_command(speak: bool, locale: str) -> None:
    """Talk to the skill in this terminal: no server, no Alexa, the same story store.

    Type what you would say to Alexa ("open bedtime stories", "a short story about an owl",
    "yes", "play rain for twenty minutes"); "new session" starts a new session, an empty line
    or Ctrl-D quits.
    """
    from skill.talk_loop import talk

    # In-process: no HTTP request, so no signature to verify and no skill id to require.
    settings = _settings(no_verify=True)
    prepare(settings)
    talk(settings, locale, speak)


# --------------------------------------------------------------------------- skill package
# The ask-cli skill package (owner: skill/package.py).
@click.group("skill-package")
def skill_package_group() -> None:
    """Build and check the ask-cli skill package (manifest + interaction models)."""


@skill_package_group.command("build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("skill-package"),
    show_default=True,
    help="Folder to write skill.json and interactionModels/custom/ into.",
)
@click.option(
    "--endpoint",
    default=None,
    help="HTTPS URL of POST /alexa (or a Lambda ARN) to put in skill.json "
    "[env: BEDTIME_ENDPOINT_URI]; default: the placeholder in skill.json.",
)
@click.option(
    "--seed-only",
    is_flag=True,
    help="Use only the checked-in slot values; do not read the story catalogue.",
)
@click.option(
    "--lambda-out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build/lambda"),
    show_default=True,
    help="Folder to write the Lambda code bundle into (ask-resources.json points here).",
)
def build_package_command(
    out_dir: Path, endpoint: str | None, seed_only: bool, lambda_out: Path
) -> None:
    """Render interaction_models/, then assemble skill-package/ and the Lambda bundle.

    interaction_models/<locale>.json is skill/interaction_model/base.json plus the locale's own
    samples. STORY_KEYWORD gets the values and synonyms of the keywords in the story catalogue.
    """
    from settings import endpoint_uri
    from skill.package import (
        SkillPackageError,
        build_lambda_bundle,
        build_skill_package,
        write_interaction_models,
    )

    endpoint = endpoint or endpoint_uri()
    if endpoint is None:
        click.echo(
            "Warning: no --endpoint (or BEDTIME_ENDPOINT_URI): skill.json keeps its placeholder "
            "endpoint, which Alexa cannot reach; pass the HTTPS URL of POST /alexa to deploy.",
            err=True,
        )
    catalogue = [] if seed_only else _keyword_catalogue()
    try:
        write_interaction_models()
        written = build_skill_package(out_dir, catalogue, endpoint=endpoint)
    except SkillPackageError as exc:
        raise click.ClickException(str(exc)) from None
    build_lambda_bundle(lambda_out)
    click.echo(
        f"wrote {len(written)} files to {out_dir} "
        f"({len(catalogue)} catalogue keywords merged); Lambda bundle: {lambda_out}"
    )


@skill_package_group.command("check")
def check_package_command() -> None:
    """Check the checked-in interaction models and skill.json; needs no database."""
    from skill.package import (
        LOCALES,
        MANIFEST_PATH,
        check_example_phrases,
        check_interaction_model,
        load_json,
        load_seed_model,
        stale_interaction_models,
    )

    models = {locale: load_seed_model(locale) for locale in LOCALES}
    problems = [f"{loc}: {p}" for loc, m in models.items() for p in check_interaction_model(m)]
    problems += [
        f"{loc}: interaction_models/{loc}.json differs from skill/interaction_model/; "
        "run `bedtime skill-package build --seed-only`"
        for loc in stale_interaction_models()
    ]
    problems += check_example_phrases(load_json(MANIFEST_PATH), models)
    if problems:
        raise click.ClickException("\n".join(problems))
    click.echo(f"{len(models)} interaction models and skill.json look valid")


def _keyword_catalogue() -> list[tuple[str, list[str]]]:
    from db import store
    from db.engine import DatabaseUnavailable, check_database, make_engine, session_factory
    from settings import ConfigurationError, database_url

    try:
        engine = make_engine(database_url())
        try:
            check_database(engine)
            with session_factory(engine)() as session:
                return store.keyword_catalogue(session)
        finally:
            engine.dispose()
    except (DatabaseUnavailable, ConfigurationError) as exc:
        raise click.ClickException(f"{exc} (or pass --seed-only)") from None

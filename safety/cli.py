"""``bedtime safety``: test the policy and the gate without the skill; train and measure it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import click

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group("safety", context_settings=CONTEXT)
def safety_group() -> None:
    """Child safety: the request policy, the story gate, and its classifier."""


@safety_group.command("request")
@click.argument("words", nargs=-1, required=True)
def request_command(words: tuple[str, ...]) -> None:
    """Print 'allow' or 'redirect (category: word)' for each requested WORD, one per line."""
    from safety.requests import judge_requests

    for verdict in judge_requests(words):
        click.echo(f"{verdict.word}\t{verdict.line()}")


def _texts(handle: IO[str]) -> list[tuple[str, str, str]]:
    """(title, text, line) per line: a JSONL story ({"title", "text"}: title "" means a
    plain text), else the line itself as a text."""
    items = []
    for line in handle:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            items.append((str(data.get("title") or " "), data["text"], line))
        else:
            items.append(("", line.rstrip("\n"), line))
    return items


@safety_group.command("check")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--words-only", is_flag=True, help="Skip the meaning check (no model needed).")
@click.option("--json", "as_json", is_flag=True, help="One JSON verdict per line instead.")
@click.option(
    "--passing-to",
    type=click.File("w", encoding="utf-8"),
    help="Also write the lines that pass to this file (a catalogue without its flagged stories).",
)
def check_command(
    file: IO[str], words_only: bool, as_json: bool, passing_to: IO[str] | None
) -> None:
    """Print one verdict per line of FILE: 'ok' or 'flagged: reasons'.

    FILE holds one text per line, or JSONL stories ({"title", "text", ...}: the whole story is
    judged, ending included). Exits with status 1 when anything was flagged.
    """
    from safety.gate import check_stories, check_text

    items = _texts(file)
    meaning = False if words_only else None
    stories = [(title.strip(), text) for title, text, _ in items if title]
    story_verdicts = iter(check_stories(stories, meaning=meaning) if stories else [])
    flagged = 0
    for title, text, line in items:
        verdict = next(story_verdicts) if title else check_text(text, meaning=meaning)
        flagged += not verdict.ok
        click.echo(json.dumps(verdict.as_dict()) if as_json else verdict.line())
        if passing_to is not None and verdict.ok:
            passing_to.write(line if line.endswith("\n") else line + "\n")
    if flagged:
        click.echo(f"{flagged} of {len(items)} flagged", err=True)
        sys.exit(1)


@safety_group.command("eval")
@click.option(
    "--set",
    "eval_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled JSONL {text, label} (default: the shipped evaluation set).",
)
@click.option("--show", type=int, default=10, show_default=True, help="Misses/alarms to list.")
def eval_command(eval_path: Path | None, show: int) -> None:
    """Measure the gate on the hand-labelled evaluation set (confusion matrix, per category)."""
    from safety.gate import check_text
    from safety.meaning import load_head
    from safety.training import EVAL_PATH, evaluate, evaluate_head, read_jsonl, score

    examples = read_jsonl(eval_path or EVAL_PATH)
    head = load_head()
    click.echo(f"meaning check alone (threshold {head.sentence_threshold}):")
    meaning_only = evaluate_head(head, examples)
    click.echo(meaning_only.report())
    scores = score(examples, head)
    gate = [not check_text(e.text).ok for e in examples]
    whole = evaluate(examples, gate, scores)
    click.echo("\nthe gate (words + meaning):")
    click.echo(whole.report())
    for text, label, value in whole.misses[:show]:
        click.echo(f"  missed [{label}] {value:.2f} {text}")
    for text, value in whole.false_alarms[:show]:
        click.echo(f"  false alarm {value:.2f} {text}")


@safety_group.command("train")
@click.option(
    "--corpus",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The training corpus folder (shared/corpus/train).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the head (default: the shipped safety/data/meaning_head.json); "
    "the fine-tuned encoder layers are written beside it.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--false-alarms", type=float, default=0.02, show_default=True)
@click.option("--ending-false-alarms", type=float, default=0.04, show_default=True)
@click.option(
    "--tune-layers",
    type=click.IntRange(0, 6),
    default=0,
    show_default=True,
    help="Also fine-tune this many top encoder layers with the classifier (0: frozen "
    "embeddings, what ships: 2 tuned layers measured no better, see README).",
)
@click.option("--epochs", type=float, default=3.0, show_default=True)
@click.option("--max-minutes", type=float, default=30.0, show_default=True)
@click.option("--threads", type=int, default=0, help="torch threads (0: torch's default).")
@click.option(
    "--catalogue-read",
    is_flag=True,
    help="Also train on the training half of the parents' catalogue read (its missed sentences "
    "and reader-kept sentences; measured, not shipped: see README).",
)
@click.option(
    "--embedding-cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep sentence embeddings in this .npz between runs (frozen encoder only).",
)
def train_command(
    corpus: Path,
    out: Path | None,
    seed: int,
    false_alarms: float,
    ending_false_alarms: float,
    tune_layers: int,
    epochs: float,
    max_minutes: float,
    threads: int,
    catalogue_read: bool,
    cache_path: Path | None,
) -> None:
    """Train the meaning check's classifier; choose its thresholds on the development set.

    By default the classifier learns on frozen embeddings (~5 minutes). --tune-layers N also
    fine-tunes the encoder's top N layers (~10 minutes an epoch on one busy CPU core).
    """
    import logging

    from safety.meaning import HEAD_PATH, Embedder, model_dir
    from safety.training import (
        EVAL_PATH,
        embedding_cache,
        evaluate,
        evaluate_head,
        fit,
        fit_encoder,
        read_jsonl,
        score,
    )

    logging.getLogger().setLevel(logging.INFO)
    if threads:
        import torch

        torch.set_num_threads(threads)
    target = out or HEAD_PATH
    if tune_layers and (catalogue_read or cache_path):
        raise click.UsageError("--catalogue-read and --embedding-cache train frozen heads only")
    if tune_layers:
        head, meta = fit_encoder(
            corpus, seed, tune_layers, epochs, max_minutes,
            sentence_false_alarms=false_alarms, ending_false_alarms=ending_false_alarms,
            out_dir=target.parent,
        )  # fmt: skip
    else:
        with embedding_cache(cache_path):
            head, meta = fit(
                corpus, seed, false_alarms, ending_false_alarms, catalogue=catalogue_read
            )
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(head.to_json()) + "\n", encoding="utf-8")
    tmp.replace(target)
    click.echo(json.dumps(meta, indent=1))
    click.echo(f"thresholds: sentence {head.sentence_threshold}, ending {head.ending_threshold}")
    if tune_layers:
        tuned = dict(meta["encoder"], file=str((target.parent / meta["encoder"]["file"]).resolve()))
        embedder = Embedder(model_dir(), tuned=tuned)
        examples = read_jsonl(EVAL_PATH)
        scores = score(examples, head, embedder)
        click.echo(
            evaluate(examples, [s >= head.sentence_threshold for s in scores], scores).report()
        )
    else:
        click.echo(evaluate_head(head).report())

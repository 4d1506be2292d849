"""``bedtime`` sub-commands for the story model: prepare-data, train, eval, export-ct2.

The lead mounts these ``click.Command`` objects under the ``bedtime`` root group. This module
must stay importable without torch/transformers (the Alexa skill imports the CLI root), so all
heavy imports happen inside the command functions.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

DEFAULT_CORPUS = "../shared/corpus"
DEFAULT_DATASET = "runs/data/v1"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.DEBUG if verbose else logging.INFO,
    )


@click.command("prepare-data")
@click.option(
    "--corpus",
    "corpus_dir",
    default=DEFAULT_CORPUS,
    show_default=True,
    # Checked only when read: --catalogue needs no corpus, and a fresh machine has none.
    type=click.Path(file_okay=False),
    help="shared/corpus directory.",
)
@click.option(
    "--out",
    "out_dir",
    default=DEFAULT_DATASET,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Dataset output directory.",
)
@click.option(
    "--source", "sources", multiple=True, help="Source folder to include (repeatable; default all)."
)
@click.option(
    "--catalogue",
    "catalogue",
    type=click.Path(exists=True, dir_okay=False),
    help="Build from this story catalogue JSONL (title, text, keywords: e.g. the storyteller's "
    "db/data/starter_catalogue.jsonl) instead of the corpus, keeping its keywords.",
)
@click.option(
    "--val-permille",
    default=20,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Validation share in 1/1000 (by content hash).",
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def prepare_data(
    corpus_dir: str,
    out_dir: str,
    sources: tuple[str, ...],
    catalogue: str | None,
    val_permille: int,
    no_progress: bool,
) -> None:
    """Build the story dataset (JSONL + manifest + validation.txt) from the shared corpus, or
    from a story catalogue (--catalogue)."""
    _setup_logging(False)
    from generator.dataset import prepare_catalogue, prepare_corpus

    if catalogue:
        if sources:
            raise click.UsageError("--source selects corpus folders; not with --catalogue")
        manifest = prepare_catalogue(catalogue, out_dir, val_permille)
    else:
        if not Path(corpus_dir).is_dir():
            raise click.BadParameter(
                f"Directory {corpus_dir!r} does not exist.", param_hint="'--corpus'"
            )
        manifest = prepare_corpus(
            corpus_dir, out_dir, list(sources) or None, val_permille, progress=not no_progress
        )
    click.echo(
        f"{manifest['n_stories']} stories ({manifest['n_train']} train, "
        f"{manifest['n_validation']} validation) -> {out_dir} sha256={manifest['sha256']}"
    )


@click.command("train", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--threads", default=2, show_default=True, type=int, help="torch CPU threads.")
def train(args: tuple[str, ...], threads: int) -> None:
    """Train a story model. ARGS: one config .json, or --field value pairs of ModelArguments,
    DataArguments and KeywordTrainingArguments (see generator/config.py), e.g.

    bedtime train generator/configs/main_small.json
    """
    _setup_logging(False)
    import torch

    torch.set_num_threads(threads)
    from generator.config import parse_args
    from generator.training import train as run_training

    model_args, data_args, training_args = parse_args(list(args))
    final_dir = run_training(model_args, data_args, training_args)
    click.echo(f"model saved to {final_dir}")


@click.command("eval")
@click.argument("model", type=str)
@click.option(
    "--text-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Held-out text (<|endoftext|>-separated) for bits per character.",
)
@click.option(
    "--dataset",
    "dataset_path",
    type=click.Path(exists=True),
    help="Dataset dir; keywords of its validation stories become prompts.",
)
@click.option(
    "--prompts",
    "n_prompts",
    default=50,
    show_default=True,
    type=int,
    help="Stories to generate for keyword inclusion/diversity (0: skip).",
)
@click.option("--max-documents", type=int, help="Only the first N documents of --text-file.")
@click.option(
    "--block-size",
    type=int,
    help="Context for bits per character (default: the block the model was trained on).",
)
@click.option("--max-new-tokens", default=256, show_default=True, type=int)
@click.option("--temperature", default=0.8, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--backend",
    default="ct2",
    show_default=True,
    type=click.Choice(["ct2", "hf"]),
    help="Generate with the CTranslate2 int8 export (made if missing) or transformers.",
)
@click.option("--threads", default=2, show_default=True, type=int)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Write the JSON report here (default <model>/eval_report.json; for a model shipped "
    "in the repository, ./eval_report.json, so tracked files are never rewritten).",
)
@click.option(
    "--update-meta/--no-update-meta",
    default=None,
    help="Record the metrics in the model's bedtime_model.json (default: yes, except for a "
    "model shipped in the repository).",
)
def evaluate(
    model: str,
    text_file: str | None,
    dataset_path: str | None,
    n_prompts: int,
    max_documents: int | None,
    block_size: int | None,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    backend: str,
    threads: int,
    report_path: str | None,
    update_meta: bool | None,
) -> None:
    """Evaluate MODEL (directory, registry name or 'shipped'): BPC, keyword inclusion,
    distinct-2/3, repetition, tokens/s."""
    _setup_logging(False)
    import torch

    torch.set_num_threads(threads)
    from generator.artifacts import atomic_write_json, resolve_model_path
    from generator.artifacts import update_meta as write_meta
    from generator.evaluate import EVAL_CONFIG, run_evaluation
    from generator.generation.factory import model_family

    config = EVAL_CONFIG.replace(max_new_tokens=max_new_tokens, temperature=temperature)
    if model_family(resolve_model_path(model)) == "storyteller":
        from generator.storyteller.evaluation import evaluate_storyteller

        report = evaluate_storyteller(resolve_model_path(model), text_file, max_documents)
    else:
        report = run_evaluation(
            model,
            text_file,
            dataset_path,
            n_prompts if dataset_path else 0,
            max_documents,
            config,
            backend=backend,
            seed=seed,
            block_size=block_size,
        )
    model_dir = resolve_model_path(model)
    shipped = is_shipped(model_dir)
    if report_path:
        path = Path(report_path)
    else:
        path = Path("eval_report.json") if shipped else model_dir / "eval_report.json"
    atomic_write_json(path, report)
    if update_meta is None:
        update_meta = not shipped
    if update_meta:
        summary = {k: v for k, v in report.items() if k in ("bpc", "generation")}
        write_meta(resolve_model_path(model), evaluation=summary)
    headline = {
        "bits_per_char": report.get("bpc", {}).get("bits_per_char"),
        **{
            k: report.get("generation", {}).get(k)
            for k in (
                "keyword_inclusion_rate",
                "distinct_2",
                "distinct_3",
                "repetition_rate_4gram",
                "made_up_words_per_1000",
                "stories_with_made_up_words",
                "generation_tokens_per_s",
            )
        },
    }
    click.echo(json.dumps(headline, indent=2))
    click.echo(f"report written to {path}")


def is_shipped(model_dir: Path) -> bool:
    """A model inside the generator package (tracked in git): evaluating it must not edit it."""
    package = Path(__file__).resolve().parent
    return Path(model_dir).resolve().is_relative_to(package)


@click.command("export-ct2")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--quantization",
    default="int8",
    show_default=True,
    type=click.Choice(["int8", "int8_float32", "int16", "float32"]),
)
def export_ct2(model_dir: str, quantization: str) -> None:
    """Convert MODEL_DIR to CTranslate2 (MODEL_DIR/ct2/) for fast CPU generation."""
    _setup_logging(False)
    from generator.generation.ct2 import export_ct2 as convert

    click.echo(f"exported to {convert(model_dir, quantization)}")


#: What the lead mounts under the ``bedtime`` root group.
COMMANDS: tuple[click.Command, ...] = (prepare_data, train, evaluate, export_ct2)


@click.group("generator")
def generator_group() -> None:
    """Story-model commands (standalone group for ``python -m generator.cli``)."""


for _command in COMMANDS:
    generator_group.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    generator_group()

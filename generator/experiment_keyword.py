"""Does the keyword loss help? Plain vs keyword fine-tuning with the same budget.

Both arms start from the same model, see the same windows in the same order for the same number
of steps (same seed); only ``keyword_loss_weight`` differs. Each is then asked for stories on
held-out keyword sets (validation stories' keywords) with identical sampling seeds, and scored
for keyword inclusion, plus bits/char on held-out text so a quality cost would show.

Run: ``python -m generator.experiment_keyword --base runs/main_small/final --steps 150``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def run_arm(
    name: str,
    base: str,
    dataset: str,
    out_root: Path,
    steps: int,
    weight: float,
    batch_size: int,
    learning_rate: float,
    seed: int,
    source_weights: str,
) -> Path:
    """Fine-tune ``base`` for ``steps`` steps with the given keyword loss weight."""
    from generator.config import parse_args
    from generator.training import train

    argv = [
        "--init",
        "fine_tune",
        "--pretrained_path",
        base,
        "--dataset_path",
        dataset,
        "--source_weights",
        source_weights,
        "--output_dir",
        str(out_root / name),
        "--max_steps",
        str(steps),
        "--per_device_train_batch_size",
        str(batch_size),
        "--learning_rate",
        str(learning_rate),
        "--lr_scheduler_type",
        "cosine",
        "--warmup_steps",
        "10",
        "--keyword_loss_weight",
        str(weight),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model",
        "false",
        "--logging_steps",
        "25",
        "--bf16",
        "--use_cpu",
        "--report_to",
        "none",
        "--seed",
        str(seed),
        "--disable_tqdm",
        "true",
        "--max_eval_windows",
        "0",
    ]
    return train(*parse_args(argv))


def score(
    model_dir: Path,
    dataset: str,
    n_prompts: int,
    text_file: str | None,
    max_documents: int,
    seed: int,
) -> dict[str, Any]:
    from generator.evaluate import EVAL_CONFIG, run_evaluation

    report = run_evaluation(
        model_dir,
        text_file,
        dataset,
        n_prompts,
        max_documents,
        EVAL_CONFIG.replace(max_new_tokens=200),
        progress=False,
        seed=seed,
    )
    report.pop("samples", None)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="Model directory both arms start from.")
    parser.add_argument("--dataset", default="runs/data/v1")
    parser.add_argument("--out", default="runs/keyword_experiment")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--keyword-weight", type=float, default=1.0)
    parser.add_argument(
        "--source-weights",
        default="tinystories=8,snakes=0.4,gutenberg=0.3,books=0.3,grimm_per_story=0.3,aesop=1,"
        "burgess=0.5",
    )
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--text-file", default=None, help="Held-out text for bits/char.")
    parser.add_argument("--max-documents", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-base", action="store_true", help="Do not score the base model.")
    args = parser.parse_args(argv)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    import torch

    torch.set_num_threads(args.threads)
    out_root = Path(args.out)
    results: dict[str, Any] = {"config": vars(args)}
    arms = {"plain": 0.0, "keyword": args.keyword_weight}
    for name, weight in arms.items():
        start = time.monotonic()
        model_dir = run_arm(
            name,
            args.base,
            args.dataset,
            out_root,
            args.steps,
            weight,
            args.batch_size,
            args.learning_rate,
            args.seed,
            args.source_weights,
        )
        train_minutes = (time.monotonic() - start) / 60
        results[name] = {
            "keyword_loss_weight": weight,
            "train_minutes": train_minutes,
            **score(
                model_dir, args.dataset, args.prompts, args.text_file, args.max_documents, args.seed
            ),
        }
        logger.info("%s: %s", name, json.dumps(results[name].get("generation")))
    if not args.skip_base:
        results["base"] = score(
            Path(args.base),
            args.dataset,
            args.prompts,
            args.text_file,
            args.max_documents,
            args.seed,
        )
    from generator.artifacts import atomic_write_json

    atomic_write_json(out_root / "report.json", results)
    logger.info("report written to %s", out_root / "report.json")
    return results


if __name__ == "__main__":  # pragma: no cover
    main()

"""``bedtime train CONFIG.json --max_minutes N``: a config file plus overrides, later flags win."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.config import parse_args

CONFIGS = Path(__file__).resolve().parents[2] / "generator" / "configs"


# gpu_large.json asks for bf16 on a GPU; TrainingArguments refuses it on a CPU-only machine.
@pytest.mark.parametrize("name", ["main_small.json", "continue_small.json", "distill_small.json"])
def test_a_config_plus_max_minutes(name: str) -> None:
    config = str(CONFIGS / name)
    plain = parse_args([config])
    model, data, training = parse_args([config, "--max_minutes", "2", "--seed", "7"])
    assert training.max_minutes == 2 and training.seed == 7
    assert (model, data) == plain[:2]
    assert training.learning_rate == plain[2].learning_rate
    assert training.lr_scheduler_type == plain[2].lr_scheduler_type
    assert training.output_dir == plain[2].output_dir

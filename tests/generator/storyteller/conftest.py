"""Fixtures for the storyteller tests: a tiny random SmolLM2-shaped model, built once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A transformers directory (safetensors + tokenizer + chat template), like ``base/``."""
    pytest.importorskip("torch")
    from tests.generator.storyteller.tiny_storyteller import build_base

    return build_base(tmp_path_factory.mktemp("tiny_base"))


@pytest.fixture(scope="session")
def tiny_tokenizer_st(tiny_base: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base)


@pytest.fixture(scope="session")
def storyteller_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared storyteller layout: hf/, ct2/ (int8) and bedtime_model.json."""
    pytest.importorskip("torch")
    pytest.importorskip("ctranslate2")
    from tests.generator.storyteller.tiny_storyteller import build_storyteller_dir

    return build_storyteller_dir(tmp_path_factory.mktemp("storyteller") / "storyteller")

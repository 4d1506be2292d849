"""A tiny random GPT-2 story model for the generation tests (the guarantee must not need a good
model)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    from generator.artifacts import load_model
    from tests.generator.tiny_story_model import build_tiny_model

    torch.set_num_threads(1)
    return load_model(build_tiny_model(tmp_path_factory.mktemp("tiny")))

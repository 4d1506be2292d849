"""Fixtures for the story-model tests: a tiny corpus, tokenizer and model (CPU, 1 thread)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MINI_CORPUS = FIXTURES / "mini_corpus"
SHARED_CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """The CPU is shared: keep every test on one thread."""
    try:
        import torch
    except ImportError:  # pragma: no cover - generator extras not installed
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mini_corpus() -> Path:
    return MINI_CORPUS


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    """The real corpus; tests needing it skip where ../shared is absent (users' machines)."""
    if not (SHARED_CORPUS / "README.md").exists():
        pytest.skip("../shared/corpus is not available")
    return SHARED_CORPUS


@pytest.fixture(scope="session")
def mini_dataset(tmp_path_factory: pytest.TempPathFactory, mini_corpus: Path) -> Path:
    from generator.dataset import prepare_corpus

    out = tmp_path_factory.mktemp("dataset")
    prepare_corpus(mini_corpus, out, val_permille=0, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(mini_dataset: Path):  # type: ignore[no-untyped-def]
    from generator.dataset import load_stories
    from generator.prompting import format_training_example
    from generator.tokenizer import train_bpe

    rows = load_stories(mini_dataset)
    return train_bpe(
        (format_training_example(r["title"], r["text"], r["keywords"]) for r in rows),
        vocab_size=400,
        min_frequency=1,
    )


@pytest.fixture()
def tiny_model(tiny_tokenizer):  # type: ignore[no-untyped-def]
    import torch

    from generator.modeling import build_from_scratch

    torch.manual_seed(0)
    return build_from_scratch("tiny", tiny_tokenizer)

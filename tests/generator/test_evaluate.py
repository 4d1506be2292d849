import math

import pytest
import torch

from generator.evaluate import (
    EVAL_CONFIG,
    bits_per_char,
    distinct_n,
    generate_story,
    made_up_word_metrics,
    repetition_rate,
    split_documents,
    trained_block_size,
)


class UniformLM(torch.nn.Module):
    """Predicts every token with probability 1/V: BPC is exactly log2(V) * tokens / chars."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):  # type: ignore[no-untyped-def]
        class Out:
            logits = torch.zeros(*input_ids.shape, self.vocab)

        return Out()


def test_bits_per_char_of_uniform_model(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    docs = ["The fox ran to the moon.", "A very long story " * 30]
    result = bits_per_char(
        UniformLM(len(tiny_tokenizer)), tiny_tokenizer, docs, block_size=32, progress=False
    )
    n_tokens = sum(len(tiny_tokenizer(" " + d)["input_ids"]) for d in docs)
    n_chars = sum(len(d) + 1 for d in docs)
    assert result["n_tokens"] == n_tokens  # sliding window scores every token exactly once
    assert result["bits_per_char"] == pytest.approx(
        math.log2(len(tiny_tokenizer)) * n_tokens / n_chars
    )


def test_trained_direction_bpc_lower_than_uniform(tiny_model, tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    docs = ["the fox and the moon"]
    random_init = bits_per_char(tiny_model, tiny_tokenizer, docs, progress=False)
    uniform = bits_per_char(UniformLM(len(tiny_tokenizer)), tiny_tokenizer, docs, progress=False)
    assert random_init["bits_per_char"] == pytest.approx(uniform["bits_per_char"], rel=0.05)


def test_split_documents() -> None:
    assert split_documents("a\n<|endoftext|>\n b \n<|endoftext|>\n") == ["a", "b"]


def test_distinct_and_repetition() -> None:
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert repetition_rate("one two three four one two three four") == pytest.approx(1 / 5)
    assert repetition_rate("short") == 0.0


def test_bpc_is_scored_inside_the_trained_block(tiny_model) -> None:  # type: ignore[no-untyped-def]
    positions = tiny_model.config.n_positions
    trained = {"hyperparameters": {"DataArguments": {"block_size": positions // 2}}}
    assert trained_block_size(tiny_model, trained) == positions // 2
    assert trained_block_size(tiny_model, {}) == min(positions, 512)  # no record: the table
    too_long = {"hyperparameters": {"DataArguments": {"block_size": positions * 4}}}
    assert trained_block_size(tiny_model, too_long) == min(positions, 512)


def test_made_up_word_metrics() -> None:
    metrics = made_up_word_metrics(
        ["Pip the owl flew to the moon.", "The hedge hedge bookshel sang to the scoting tree."]
    )
    assert metrics["made_up_words"] == 2  # "bookshel", "scoting"; the name "Pip" is allowed
    assert metrics["stories_with_made_up_words"] == 0.5
    assert metrics["made_up_words_per_1000"] == pytest.approx(1000 * 2 / 16)
    assert made_up_word_metrics([])["made_up_words"] == 0


def test_generate_story_reports_inclusion(tiny_model, tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    story = generate_story(
        tiny_model, tiny_tokenizer, ["fox"], EVAL_CONFIG.replace(max_new_tokens=8)
    )
    assert story.n_new_tokens <= 8
    assert story.included == [("fox" in story.text.lower())] or story.included == [True]


@pytest.mark.slow
def test_generation_metrics_with_ct2_backend(tiny_model, tiny_tokenizer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from generator.artifacts import save_model
    from generator.evaluate import evaluate_generation

    model_dir = save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {})
    sets = [["fox"], ["moon", "owl"], ["bear"]]
    metrics, stories = evaluate_generation(
        tiny_model,
        tiny_tokenizer,
        sets,
        EVAL_CONFIG.replace(max_new_tokens=12),
        ct2_model_dir=model_dir,
    )
    assert (model_dir / "ct2" / "model.bin").exists()
    assert metrics["n_stories"] == 3 and len(stories) == 3
    assert [len(s.included) for s in stories] == [1, 2, 1]
    assert 0.0 <= metrics["keyword_inclusion_rate"] <= 1.0
    assert all(s.n_new_tokens <= 12 for s in stories)

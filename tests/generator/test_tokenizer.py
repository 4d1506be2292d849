from pathlib import Path

import pytest

from generator.prompting import SPECIAL_TOKENS, build_prompt, format_training_example
from generator.tokenizer import load_gpt2_tokenizer, special_token_ids, train_bpe


def test_trained_bpe_keeps_special_tokens_whole(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = special_token_ids(tiny_tokenizer)
    assert list(ids) == list(SPECIAL_TOKENS) and sorted(ids.values()) == [0, 1, 2, 3]
    text = format_training_example("The Fox", "A fox slept.", ["fox", "moon"])
    encoded = tiny_tokenizer(text)["input_ids"]
    assert tiny_tokenizer.decode(encoded) == text  # byte-level: lossless round trip
    prompt_ids = tiny_tokenizer(build_prompt(["fox"]))["input_ids"]
    assert prompt_ids[0] == ids["<|keywords|>"] and prompt_ids[-1] == ids["<|title|>"]
    assert tiny_tokenizer.eos_token == tiny_tokenizer.pad_token == "<|endoftext|>"


def test_vocab_size_is_checked() -> None:
    with pytest.raises(ValueError):
        train_bpe(["abc"], vocab_size=100)


def test_gpt2_tokenizer_from_shared_corpus(shared_corpus: Path) -> None:
    tok = load_gpt2_tokenizer(shared_corpus / "gpt2_tokenizer")
    assert tok("Hello world, once upon a time")["input_ids"] == [
        15496, 995, 11, 1752, 2402, 257, 640,
    ]  # fmt: skip
    ids = special_token_ids(tok)
    assert ids["<|endoftext|>"] == 50256
    assert {ids[t] for t in SPECIAL_TOKENS[1:]} == {50257, 50258, 50259}

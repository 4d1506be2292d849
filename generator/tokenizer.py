"""Tokenizers: a small byte-level BPE trained on our corpus, or GPT-2's BPE from a directory.

Both come back as ``PreTrainedTokenizerFast`` with the prompt special tokens registered, so the
trainer, the evaluator and generation never care which one a model uses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from generator.prompting import END_TOKEN, SPECIAL_TOKENS

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)


def _wrap(tokenizer_object: object) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object,
        bos_token=END_TOKEN,
        eos_token=END_TOKEN,
        pad_token=END_TOKEN,
        unk_token=None,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t != END_TOKEN],
    )
    tok.model_max_length = 1_000_000  # windows are cut by the trainer, never by the tokenizer
    return tok


def train_bpe(
    texts: Iterable[str], vocab_size: int = 8192, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on ``texts`` (special tokens get the first ids)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError("vocab_size must cover the 256 bytes and the special tokens")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    logger.info("trained byte-level BPE with %d tokens", tokenizer.get_vocab_size())
    return _wrap(tokenizer)


def load_gpt2_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """GPT-2's BPE (vocab.json + merges.txt or tokenizer.json) plus our special tokens."""
    from transformers import GPT2TokenizerFast

    tok = GPT2TokenizerFast.from_pretrained(str(directory))
    tok.add_special_tokens(
        {"additional_special_tokens": [t for t in SPECIAL_TOKENS if t != END_TOKEN]}
    )
    tok.pad_token = tok.eos_token
    tok.model_max_length = 1_000_000
    return tok


def special_token_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    """Ids of the prompt tokens; raises if the tokenizer lacks one (wrong tokenizer for model)."""
    vocab = tokenizer.get_vocab()
    missing = [token for token in SPECIAL_TOKENS if token not in vocab]
    if missing:
        raise ValueError(f"tokenizer lacks the special tokens {missing}")
    return {token: int(vocab[token]) for token in SPECIAL_TOKENS}

"""A tiny randomly-initialised story model for generator tests (no corpus, no network).

The tokenizer is a byte-level BPE trained in milliseconds on a few sentences, with the prompt
format's special tokens, so multi-token keywords ("unicorn" -> "un", "icorn") really occur.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_TEXT = """Once upon a time a little dragon flew over the sea with a kite. The moon was bright
and the stars were twinkling. A bear and a bunny went to sleep in the forest. The princess sang a
song to the boat. The owl said good night to the mouse and the mice. Everyone was happy and warm.
A cat, a dog and a fish played with a ball near the garden under the tree."""


def build_tiny_model(out_dir: Path, seed: int = 0, n_layer: int = 1, n_embd: int = 32) -> Path:
    """Save a random GPT-2 (1 layer, 32 dims) + tokenizer as a model directory."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from generator.artifacts import save_model
    from generator.prompting import END_TOKEN, SPECIAL_TOKENS

    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        [SAMPLE_TEXT] * 3, vocab_size=400, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tok_file = out_dir / "_bpe.json"
    bpe.save(str(tok_file))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tok_file),
        eos_token=END_TOKEN,
        bos_token=END_TOKEN,
        pad_token=END_TOKEN,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=512,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config).eval()
    model_dir = out_dir / "model"
    save_model(model, tokenizer, model_dir, meta={"name": "tiny-test", "preset": "test"})
    tok_file.unlink()
    return model_dir

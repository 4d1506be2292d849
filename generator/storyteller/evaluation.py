"""Bits per character of the storyteller on held-out stories (``bedtime eval storyteller``).

Each document is scored as the reply to a plain request ("Write a short bedtime story.")
after a generic title line, the way the storyteller is asked for stories; ``bits_per_char`` is
the same routine that scores the light model, so the figures compare (a lower number means
the model finds real children's stories more predictable). ``plain`` scores them with no chat
prefix at all, for comparison with models that never saw the format.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from generator.storyteller.prompts import chat_messages, format_reply

#: The title line every scored document gets (the documents have no titles of their own).
EVAL_TITLE = "A Bedtime Story"


def chat_prefix(tokenizer: Any) -> str:
    prompt = tokenizer.apply_chat_template(
        chat_messages([], "short"), add_generation_prompt=True, tokenize=False
    )
    return prompt + format_reply(EVAL_TITLE, "").rstrip() + "\n\n"


def evaluate_storyteller(
    model_dir: str | Path,
    text_file: str | Path | None,
    max_documents: int | None = None,
    *,
    progress: bool = True,
    weights: str = "hf",
    plain: bool = False,
) -> dict[str, Any]:
    """``{"bpc": {...}}`` for the storyteller's merged weights (``weights``: hf or base)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generator.evaluate import bits_per_char, split_documents

    path = Path(model_dir) / weights
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    report: dict[str, Any] = {"model_path": str(path), "family": "storyteller"}
    if text_file is None:
        return report
    docs = split_documents(Path(text_file).read_text(encoding="utf-8"))
    if max_documents:
        docs = docs[:max_documents]
    prefix = "" if plain else chat_prefix(tokenizer)
    if plain and tokenizer.bos_token:
        prefix = tokenizer.bos_token
    started = time.perf_counter()
    bpc = bits_per_char(
        model, tokenizer, docs, block_size=512, progress=progress, prefix_text=prefix
    )
    bpc.update(
        text_file=str(text_file),
        conditioning="plain" if plain else "chat request + title line",
        eval_tokens_per_s=bpc["n_tokens"] / (time.perf_counter() - started),
    )
    report["bpc"] = bpc
    return report

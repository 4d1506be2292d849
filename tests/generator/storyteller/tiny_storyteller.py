"""A tiny random SmolLM2-shaped storyteller for the storyteller tests (no hub, no wheel).

A byte-level BPE trained in milliseconds on a few sentences, with SmolLM2's chat special tokens
and chat template, and a 2-layer Llama (hidden 64, grouped-query attention, tied embeddings).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
SAMPLE_TEXT = """Title: The Dragon and the Kite
Once upon a time a little dragon flew over the sea with a kite. The moon was bright and the
stars were twinkling. A bear and a bunny went to sleep in the forest. The princess sang a song
to the boat. The owl said good night to the mouse and the mice. Everyone was happy and warm.
Write a short bedtime story about a kite and the moon. You are a gentle storyteller.
You write calm, simple bedtime stories for young children: kind characters, no danger,
and a cosy, sleepy, happy ending. system user assistant"""


def build_tokenizer(work_dir: Path) -> Any:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        [SAMPLE_TEXT] * 3, vocab_size=400, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tok_file = work_dir / "_bpe.json"
    bpe.save(str(tok_file))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tok_file),
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tok_file.unlink()
    return tokenizer


def build_llama(tokenizer: Any, seed: int = 0) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


def save_hf(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_base(out_dir: Path, seed: int = 0) -> Path:
    """A transformers directory like ``<storyteller>/base``: safetensors + tokenizer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out_dir)
    return save_hf(build_llama(tokenizer, seed), tokenizer, out_dir)


def build_storyteller_dir(out_dir: Path, seed: int = 0) -> Path:
    """A prepared storyteller layout: ``hf/``, ``ct2/`` (int8) and ``bedtime_model.json``."""
    from generator.storyteller.prepare import export_ct2

    out_dir.mkdir(parents=True, exist_ok=True)
    build_base(out_dir / "hf", seed)
    export_ct2(out_dir / "hf", out_dir / "ct2")
    meta = {"family": "storyteller", "name": "tiny-storyteller"}
    (out_dir / "bedtime_model.json").write_text(json.dumps(meta), encoding="utf-8")
    return out_dir


def make_adapter(base_dir: Path, out_dir: Path, seed: int = 1) -> Any:
    """A LoRA adapter on ``base_dir`` whose B matrices are non-zero (so merging changes logits);
    returns the PeftModel it was saved from."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            target_modules=["q_proj", "v_proj", "down_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.2)
    peft_model.eval()
    peft_model.save_pretrained(out_dir, safe_serialization=True)
    return peft_model

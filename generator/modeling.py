"""Model construction: GPT-2 presets trained from scratch, local fine-tuning, optional LoRA."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerFast

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """GPT-2 shape. Parameter counts below assume an 8k vocabulary (tied embeddings)."""

    n_layer: int
    n_head: int
    n_embd: int
    n_positions: int = 512
    note: str = ""


PRESETS: dict[str, Preset] = {
    "tiny": Preset(2, 2, 32, 128, "~0.3M: unit tests only"),
    "small": Preset(4, 4, 192, 512, "~3.4M: CPU, fast"),
    "medium": Preset(6, 8, 256, 512, "~6.9M: CPU, an hour of two cores"),
    "large": Preset(8, 8, 384, 512, "~17M: GPU or a long CPU run"),
    "gpt2": Preset(12, 12, 768, 1024, "124M at GPT-2's vocabulary: GPU"),
}


def build_from_scratch(
    preset: str, tokenizer: PreTrainedTokenizerFast, dropout: float = 0.0
) -> GPT2LMHeadModel:
    """A freshly initialised GPT2LMHeadModel of a named preset sized to ``tokenizer``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    shape = PRESETS[preset]
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=shape.n_positions,
        n_embd=shape.n_embd,
        n_layer=shape.n_layer,
        n_head=shape.n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = GPT2LMHeadModel(config)
    logger.info("built %s model from scratch: %.2fM parameters", preset, count_params(model) / 1e6)
    return model


def load_pretrained(path: str | Path, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    """Local GPT-2 weights (a directory a user supplies); embeddings grow for special tokens."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path))
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def apply_lora(
    model: PreTrainedModel, r: int = 8, alpha: int = 16, dropout: float = 0.05
) -> PreTrainedModel:
    """Wrap ``model`` with LoRA adapters on attention/MLP projections (GPT-2 Conv1D layers).

    Embeddings stay trainable because the keyword special tokens are new.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=["c_attn", "c_proj", "c_fc"],
        fan_in_fan_out=True,
        task_type="CAUSAL_LM",
        modules_to_save=["wte"],
    )
    peft_model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    logger.info("LoRA: %d trainable of %d parameters", trainable, count_params(peft_model))
    return peft_model


def count_params(model: PreTrainedModel) -> int:
    """Unique parameters (tied embeddings counted once)."""
    seen: set[int] = set()
    total = 0
    for param in model.parameters():
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel()
    return total

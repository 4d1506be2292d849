"""LoRA fine-tuning of the storyteller on CPU (or a GPU when one is there), time-boxed.

Data: the well-written synthetic bedtime/child stories (titled, trimmed to whole stories of a
readable length) and TinyStories (simple words; short requests), each story turned into a chat
("Write a bedtime story about a kite and the moon." -> "Title: ...\\n\\nstory"), keywords taken
from the story itself. Stories that fail the word-level safety gate are left out. The loss is the
LM loss on the reply only, plus, optionally, the differentiable keyword loss (noisy-OR that the
story mentions each requested keyword) from :mod:`generator.keyword_loss`.

The adapter (a few MB of safetensors) and its training record are what we ship.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generator.storyteller.prompts import chat_messages, format_reply, length_for_words

logger = logging.getLogger(__name__)

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class FinetuneConfig:
    """Every knob of a storyteller fine-tune; stored in the adapter's training record."""

    corpus: str = "../shared/corpus"
    out_dir: str = "runs/storyteller"
    max_minutes: float = 30.0
    max_steps: int = 100_000
    max_tokens: int = 640  # prompt + reply, per example
    snakes_max_words: int = 470
    snakes_share: float = 0.6  # the rest is TinyStories
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    #: Adapt only the top layers: backward then stops there, ~1.4x more examples per CPU minute.
    lora_first_layer: int = 10
    learning_rate: float = 3e-4
    warmup_steps: int = 10
    grad_accum: int = 4
    keyword_loss_weight: float = 0.0
    threads: int = 2
    seed: int = 7
    eval_examples: int = 24
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    source: str
    keywords: tuple[str, ...]
    length: str
    title: str
    text: str


def _clean_story(text: str) -> str:
    paragraphs = [" ".join(p.split()) for p in text.replace("\r", "").split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def build_examples(config: FinetuneConfig) -> list[Example]:
    """Chat examples from the corpus, shuffled, snakes:tinystories by ``snakes_share``."""
    from generator.dataset import read_snakes, read_tinystories
    from generator.generation.assemble import keyword_title
    from generator.keywords import extract_keywords
    from generator.safety import check_story

    rng = random.Random(config.seed)
    root = Path(config.corpus) / "train"
    snakes: list[Example] = []
    for source, title, raw in read_snakes(root / "snakes_bedtime_child"):
        text = _clean_story(raw)
        words = len(text.split())
        if not 120 <= words <= config.snakes_max_words or not check_story(title, text).ok:
            continue
        keywords = extract_keywords(title, text, k=rng.choice((1, 2, 2)))
        if keywords:
            snakes.append(Example(source, tuple(keywords), length_for_words(words), title, text))
    tiny: list[Example] = []
    for source, _title, raw in read_tinystories(root / "tinystories_train_head"):
        text = _clean_story(raw)
        if len(text.split()) < 60 or not check_story("", text).ok:
            continue
        keywords = extract_keywords("", text, k=rng.choice((1, 2)))
        if keywords:
            title = keyword_title(keywords)
            tiny.append(Example(source, tuple(keywords), "short", title, text))
    rng.shuffle(snakes)
    rng.shuffle(tiny)
    n_tiny = int(len(snakes) * (1 - config.snakes_share) / max(config.snakes_share, 1e-6))
    examples = snakes + tiny[:n_tiny]
    rng.shuffle(examples)
    logger.info("%d snakes + %d tinystories examples", len(snakes), min(n_tiny, len(tiny)))
    return examples


def encode_example(tokenizer: Any, example: Example, max_tokens: int) -> dict[str, list[int]]:
    """input_ids, labels (-100 on the prompt) and the keyword token ids of one chat."""
    messages = chat_messages(example.keywords, example.length)
    prompt_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    if isinstance(prompt_ids, dict) or hasattr(prompt_ids, "input_ids"):
        prompt_ids = prompt_ids["input_ids"]
    reply = format_reply(example.title, example.text) + "<|im_end|>"
    reply_ids = tokenizer.encode(reply, add_special_tokens=False)
    ids = (list(prompt_ids) + reply_ids)[:max_tokens]
    labels = ([-100] * len(prompt_ids) + reply_ids)[:max_tokens]
    keyword_ids = sorted(
        {tokenizer.encode(" " + k, add_special_tokens=False)[0] for k in example.keywords}
    )
    return {"input_ids": ids, "labels": labels, "keyword_ids": keyword_ids}


def _batches(encoded: Sequence[dict[str, list[int]]], rng: random.Random) -> Iterator[dict]:
    order = list(range(len(encoded)))
    while True:
        rng.shuffle(order)
        for i in order:
            yield encoded[i]


def _loss(model: Any, item: dict[str, list[int]], keyword_weight: float) -> tuple[Any, Any]:
    import torch

    from generator.keyword_loss import keyword_loss

    ids = torch.tensor([item["input_ids"]])
    labels = torch.tensor([item["labels"]])
    out = model(input_ids=ids)
    logits = out.logits[:, :-1]
    targets = labels[:, 1:]
    lm = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-100
    )
    if keyword_weight <= 0 or not item["keyword_ids"]:
        return lm, lm
    kw = keyword_loss(logits, torch.tensor([item["keyword_ids"]]), (targets != -100), mode="any")
    return lm + keyword_weight * kw, lm


def halve_adapter(adapter_dir: Path) -> None:
    """Store the adapter in fp16: half the size in git, merged back into fp32 weights at load."""
    import torch
    from safetensors.torch import load_file, save_file

    path = adapter_dir / "adapter_model.safetensors"
    tensors = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def finetune(base_dir: str | Path, config: FinetuneConfig) -> Path:
    """Train a LoRA adapter on ``base_dir`` (a safetensors SmolLM2); returns the adapter dir."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(LORA_TARGETS),
            layers_to_transform=list(
                range(config.lora_first_layer, model.config.num_hidden_layers)
            ),
            task_type="CAUSAL_LM",
        ),
    )
    examples = build_examples(config)
    held_out, train = examples[: config.eval_examples], examples[config.eval_examples :]
    encoded = [encode_example(tokenizer, e, config.max_tokens) for e in train]
    eval_encoded = [encode_example(tokenizer, e, config.max_tokens) for e in held_out]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)

    def lr_at(step: int, total: int) -> float:
        if step < config.warmup_steps:
            return config.learning_rate * (step + 1) / config.warmup_steps
        progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
        return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            losses = [float(_loss(model, item, 0.0)[1]) for item in eval_encoded]
        model.train()
        return sum(losses) / max(1, len(losses))

    record: dict[str, Any] = {"config": asdict(config), "history": []}
    eval_before = evaluate()
    logger.info("held-out reply loss before: %.4f", eval_before)
    started = time.monotonic()
    budget_s = config.max_minutes * 60
    # The cosine schedule is planned on a step estimate that the first steps refine.
    planned = config.max_steps
    stream = _batches(encoded, rng)
    tokens = examples_seen = step = 0
    running = None
    bar = tqdm(total=int(budget_s), unit="s", desc="fine-tune (time box)")
    model.train()
    while step < config.max_steps:
        elapsed = time.monotonic() - started
        if elapsed > budget_s:
            break
        if step == 5:
            per_step = elapsed / 5
            planned = min(config.max_steps, max(6, int(budget_s / per_step)))
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, planned)
        total_lm = 0.0
        for _ in range(config.grad_accum):
            item = next(stream)
            loss, lm = _loss(model, item, config.keyword_loss_weight)
            (loss / config.grad_accum).backward()
            total_lm += float(lm) / config.grad_accum
            tokens += len(item["input_ids"])
            examples_seen += 1
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        running = total_lm if running is None else 0.9 * running + 0.1 * total_lm
        bar.n = min(int(time.monotonic() - started), int(budget_s))
        bar.set_postfix(step=step, loss=f"{running:.3f}")
        bar.refresh()
        if step % 25 == 0:
            record["history"].append({"step": step, "loss": round(running, 4), "s": int(elapsed)})
    bar.close()
    seconds = time.monotonic() - started
    eval_after = evaluate()
    logger.info("held-out reply loss after %d steps: %.4f", step, eval_after)
    adapter_dir = out_dir / "adapter"
    model.save_pretrained(adapter_dir, safe_serialization=True)
    halve_adapter(adapter_dir)
    record.update(
        steps=step,
        examples_seen=examples_seen,
        tokens=tokens,
        seconds=round(seconds, 1),
        tokens_per_s=round(tokens / max(seconds, 1e-9), 1),
        train_examples=len(encoded),
        held_out_reply_loss_before=round(eval_before, 4),
        held_out_reply_loss_after=round(eval_after, 4),
        device="cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        threads=config.threads,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    (adapter_dir / "training_record.json").write_text(json.dumps(record, indent=2) + "\n")
    return adapter_dir


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="LoRA fine-tune the storyteller (time-boxed).")
    parser.add_argument("base_dir", help="safetensors SmolLM2 dir (<storyteller>/base)")
    for name, value in asdict(FinetuneConfig()).items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    base = args.pop("base_dir")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = FinetuneConfig(**args)
    print(finetune(base, config))


if __name__ == "__main__":
    main()

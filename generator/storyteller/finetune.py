"""Fine-tuning the storyteller, time-boxed: LoRA on this project's CPU, or on a GPU when a session
has one (``--device cuda --batch-size 16``, bf16 autocast), and there also a full fine-tune
(``--full``: every weight, written as a model folder that ``bedtime storyteller prepare
--weights`` exports instead of merging the shipped adapter).

Data: the well-written synthetic bedtime/child stories (titled, trimmed to whole stories of a
readable length) and TinyStories (simple words; short requests), each story turned into a chat
("Write a bedtime story about a kite and the moon." -> "Title: ...\\n\\nstory"), keywords taken
from the story itself. Stories that fail the word-level safety gate are left out. The loss is the
LM loss on the reply only, plus, optionally, the differentiable keyword loss (noisy-OR that the
story mentions each requested keyword) from :mod:`generator.keyword_loss`.

The adapter (a few MB of safetensors) and its training record are what we ship; a full
fine-tune is too large for the repository (540 MB) and stays a local artifact for generating
the catalogue.
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
    #: "auto": a GPU when torch sees one, else the CPU.
    device: str = "auto"
    #: Examples per forward pass (padded to the longest); a GPU wants 16 or more.
    batch_size: int = 1
    #: Train every weight instead of a LoRA adapter (a GPU task: 135 M parameters + AdamW).
    full: bool = False
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


def _batches(
    encoded: Sequence[dict[str, list[int]]], rng: random.Random, size: int = 1
) -> Iterator[list[dict[str, list[int]]]]:
    """Endless shuffled epochs, ``size`` examples at a time."""
    order = list(range(len(encoded)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - size + 1, size):
            yield [encoded[i] for i in order[start : start + size]]


def collate(items: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-padded input ids, attention mask and labels (-100 on padding) for one batch."""
    import torch

    width = max(len(item["input_ids"]) for item in items)
    ids = [item["input_ids"] + [pad_id] * (width - len(item["input_ids"])) for item in items]
    labels = [item["labels"] + [-100] * (width - len(item["labels"])) for item in items]
    mask = [[1] * len(item["input_ids"]) + [0] * (width - len(item["input_ids"])) for item in items]
    return {
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(labels),
    }


def _loss(
    model: Any,
    item: dict[str, list[int]] | Sequence[dict[str, list[int]]],
    keyword_weight: float,
    pad_id: int = 0,
    device: Any = None,
) -> tuple[Any, Any]:
    """LM loss on the replies of one example (a dict) or a padded batch (a list), plus the
    keyword loss (one example at a time only)."""
    import torch

    from generator.keyword_loss import keyword_loss

    items = [item] if isinstance(item, dict) else list(item)
    batch = collate(items, pad_id)
    if device is not None:
        batch = {name: tensor.to(device) for name, tensor in batch.items()}
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1]
    targets = batch["labels"][:, 1:]
    lm = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-100
    )
    if keyword_weight <= 0 or len(items) != 1 or not items[0]["keyword_ids"]:
        return lm, lm
    keyword_ids = torch.tensor([items[0]["keyword_ids"]], device=logits.device)
    kw = keyword_loss(logits, keyword_ids, (targets != -100), mode="any")
    return lm + keyword_weight * kw, lm


def pick_device(name: str) -> str:
    """``auto``: cuda when torch sees a GPU, else cpu; an unavailable GPU is a clear error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: torch sees no GPU here (use --device cpu)")
    return name


def halve_adapter(adapter_dir: Path) -> None:
    """Store the adapter in fp16: half the size in git, merged back into fp32 weights at load."""
    import torch
    from safetensors.torch import load_file, save_file

    path = adapter_dir / "adapter_model.safetensors"
    tensors = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def finetune(base_dir: str | Path, config: FinetuneConfig) -> Path:
    """Train on ``base_dir`` (a safetensors SmolLM2); returns the adapter dir (LoRA) or the
    model dir (``config.full``)."""
    import contextlib

    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if config.keyword_loss_weight > 0 and config.batch_size != 1:
        raise ValueError("the keyword loss is computed one example at a time: use --batch-size 1")
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if not config.full:
        from peft import LoraConfig, get_peft_model

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
    model.to(device)
    # bf16 autocast on a GPU (fp32 master weights); plain fp32 on the CPU, as measured.
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16))
        if device.startswith("cuda")
        else contextlib.nullcontext
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
        with torch.no_grad(), autocast():
            losses = [float(_loss(model, item, 0.0, pad_id, device)[1]) for item in eval_encoded]
        model.train()
        return sum(losses) / max(1, len(losses))

    record: dict[str, Any] = {"config": asdict(config), "history": []}
    eval_before = evaluate()
    logger.info("held-out reply loss before: %.4f", eval_before)
    started = time.monotonic()
    budget_s = config.max_minutes * 60
    # The cosine schedule is planned on a step estimate that the first steps refine.
    planned = config.max_steps
    stream = _batches(encoded, rng, max(1, min(config.batch_size, len(encoded))))
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
            batch = next(stream)
            with autocast():
                loss, lm = _loss(model, batch, config.keyword_loss_weight, pad_id, device)
            (loss / config.grad_accum).backward()
            total_lm += float(lm) / config.grad_accum
            tokens += sum(len(item["input_ids"]) for item in batch)
            examples_seen += len(batch)
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
    if config.full:
        saved = out_dir / "model"
        model.to("cpu").save_pretrained(saved, safe_serialization=True)
        tokenizer.save_pretrained(saved)
    else:
        saved = out_dir / "adapter"
        model.save_pretrained(saved, safe_serialization=True)
        halve_adapter(saved)
    record.update(
        steps=step,
        examples_seen=examples_seen,
        tokens=tokens,
        seconds=round(seconds, 1),
        tokens_per_s=round(tokens / max(seconds, 1e-9), 1),
        train_examples=len(encoded),
        held_out_reply_loss_before=round(eval_before, 4),
        held_out_reply_loss_after=round(eval_after, 4),
        device=torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        threads=config.threads,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    (saved / "training_record.json").write_text(json.dumps(record, indent=2) + "\n")
    return saved


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Fine-tune the storyteller (time-boxed).")
    parser.add_argument("base_dir", help="safetensors SmolLM2 dir (<storyteller>/base)")
    for name, value in asdict(FinetuneConfig()).items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        elif isinstance(value, (int, float, str)):
            parser.add_argument(flag, type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    base = args.pop("base_dir")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = FinetuneConfig(**args)
    print(finetune(base, config))


if __name__ == "__main__":
    main()

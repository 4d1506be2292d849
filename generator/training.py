"""Training: keyword-prefixed windows, a Trainer with the keyword loss, time box, bf16 on CPU.

``train()`` is the library entry point; ``bedtime train`` (generator/cli.py) calls it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import (
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    set_seed,
)

from generator.config import (
    DataArguments,
    KeywordTrainingArguments,
    ModelArguments,
    parse_source_weights,
    to_jsonable,
)
from generator.keyword_loss import keyword_loss
from generator.prompting import (
    END_TOKEN,
    STORY_TOKEN,
    TITLE_TOKEN,
    format_keywords,
)

logger = logging.getLogger(__name__)
MAX_KEYWORD_TOKENS = 16
MIN_TAIL_TOKENS = 32


# --------------------------------------------------------------------------- examples


@dataclass
class Window:
    input_ids: list[int]
    labels: list[int]
    story_mask: list[bool]  # position t predicts a story token (keyword loss positions)
    keyword_ids: list[int]


def prompt_prefix(title: str, keywords: list[str]) -> str:
    """Training prefix; identical to ``build_prompt(keywords, title)``."""
    title_part = (" " + " ".join(title.split())) if title.strip() else ""
    return format_keywords(keywords) + TITLE_TOKEN + title_part + STORY_TOKEN


def keyword_token_ids(
    tokenizer: PreTrainedTokenizerFast, keywords: list[str], add_space: bool
) -> list[int]:
    """All BPE tokens of every keyword (whole keywords), de-duplicated, capped."""
    ids: list[int] = []
    for kw in keywords:
        for token_id in tokenizer((" " if add_space else "") + kw, add_special_tokens=False)[
            "input_ids"
        ]:
            if token_id not in ids:
                ids.append(token_id)
    return ids[:MAX_KEYWORD_TOKENS]


def make_windows(
    tokenizer: PreTrainedTokenizerFast,
    title: str,
    text: str,
    keywords: list[str],
    data_args: DataArguments,
    rng: random.Random,
    body_ids: list[int] | None = None,
) -> list[Window]:
    """Cut one story into block_size windows, each starting with the keyword prompt.

    Later windows repeat the prompt so every window is keyword-conditioned (the keyword loss
    needs the keywords in context). Keyword subsets (1..max), keyword dropout and title dropout
    are drawn from ``rng``.
    """
    if keywords and rng.random() >= data_args.keyword_dropout:
        k = rng.randint(1, min(data_args.max_keywords, len(keywords)))
        chosen = sorted(rng.sample(range(len(keywords)), k))
        kws = [keywords[i] for i in chosen]
        # (drawn only when asked for, so configs without it keep their exact data order)
        if data_args.title_dropout and rng.random() < data_args.title_dropout:
            title = ""
        prefix = prompt_prefix(title, kws)
    else:
        kws, prefix = [], STORY_TOKEN
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    if body_ids is None:
        body_ids = tokenizer(" " + text.strip(), add_special_tokens=False)["input_ids"]
    body = [*body_ids, tokenizer.convert_tokens_to_ids(END_TOKEN)]
    kw_ids = keyword_token_ids(tokenizer, kws, data_args.add_space) if kws else []
    title_id = tokenizer.convert_tokens_to_ids(TITLE_TOKEN)
    title_start = prefix_ids.index(title_id) + 1 if title_id in prefix_ids else len(prefix_ids)
    room = data_args.block_size - len(prefix_ids)
    if room < MIN_TAIL_TOKENS:
        prefix_ids = prefix_ids[: data_args.block_size - MIN_TAIL_TOKENS]
        room = MIN_TAIL_TOKENS
    windows = []
    kw_set = set(kw_ids)
    for start in range(0, len(body), room):
        chunk = body[start : start + room]
        if start and len(chunk) < MIN_TAIL_TOKENS:
            break
        ids = prefix_ids + chunk
        labels = list(ids)
        if not data_args.labels_same_as_input:
            # The keywords are given, never predicted. The first window still teaches the title
            # and the <|story|> token (generation asks the model for both); later windows repeat
            # the whole prompt as context only.
            given = title_start if start == 0 else len(prefix_ids)
            labels[:given] = [-100] * given
        if data_args.mask_nouns and kw_set:
            labels = [
                -100 if (i >= len(prefix_ids) and t in kw_set) else t for i, t in enumerate(labels)
            ]
        # logits at position t predict token t+1: story targets are t+1 >= len(prefix). The
        # opening tokens of a story are left out of the keyword loss, or the cheapest way to
        # "mention" a keyword is to start the story with it ("bunny loved to ...").
        first = len(prefix_ids) - 1 + (data_args.keyword_skip_tokens if start == 0 else 0)
        story_mask = [first <= t < len(ids) - 1 for t in range(len(ids))]
        windows.append(Window(ids, labels, story_mask, kw_ids))
    return windows


class WindowDataset(Dataset):
    """A list of windows as tensors-on-demand (small enough to keep in memory)."""

    def __init__(self, windows: list[Window]) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        w = self.windows[index]
        return {
            "input_ids": w.input_ids,
            "labels": w.labels,
            "story_mask": w.story_mask,
            "keyword_ids": w.keyword_ids,
        }


def collate(batch: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest window; labels -100 and keyword ids -1 on padding."""
    length = max(len(item["input_ids"]) for item in batch)
    n_kw = max(1, max(len(item["keyword_ids"]) for item in batch))

    def pad(seq: list[Any], size: int, value: Any) -> list[Any]:
        return list(seq) + [value] * (size - len(seq))

    return {
        "input_ids": torch.tensor([pad(b["input_ids"], length, pad_id) for b in batch]),
        "attention_mask": torch.tensor([pad([1] * len(b["input_ids"]), length, 0) for b in batch]),
        "labels": torch.tensor([pad(b["labels"], length, -100) for b in batch]),
        "story_mask": torch.tensor([pad(b["story_mask"], length, False) for b in batch]),
        "keyword_ids": torch.tensor([pad(b["keyword_ids"], n_kw, -1) for b in batch]),
    }


def source_repeats(source: str, weights: dict[str, float]) -> float:
    """Weight of the longest matching source prefix (1.0 when none matches)."""
    best = ""
    for prefix in weights:
        if source.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return weights[best] if best else 1.0


def build_windows(
    rows: list[dict[str, Any]],
    tokenizer: PreTrainedTokenizerFast,
    data_args: DataArguments,
    seed: int,
    weights: dict[str, float] | None = None,
    progress: bool = True,
) -> list[Window]:
    """Windows for every story, repeated/sub-sampled per source weight, shuffled."""
    from tqdm import tqdm

    if not rows:
        return []
    rng = random.Random(seed)
    texts = [" " + r["text"].strip() for r in rows]
    bodies = tokenizer(texts, add_special_tokens=False)["input_ids"]
    windows: list[Window] = []
    for row, body in tqdm(
        list(zip(rows, bodies, strict=True)), desc="windows", disable=not progress, unit="story"
    ):
        weight = source_repeats(row["source"], weights or {})
        repeats = int(weight) + (1 if rng.random() < weight - int(weight) else 0)
        for _ in range(repeats):
            windows.extend(
                make_windows(
                    tokenizer,
                    row["title"],
                    row["text"],
                    row["keywords"],
                    data_args,
                    rng,
                    body_ids=body,
                )
            )
    rng.shuffle(windows)
    return windows


# --------------------------------------------------------------------------- trainer


class KeywordTrainer(Trainer):
    """Trainer whose loss is LM loss + keyword_loss_weight x a differentiable keyword loss.

    The keyword term is added only in training; evaluation reports the plain LM loss so
    checkpoints are compared (and the best one kept) on language-model quality alone.
    """

    def __init__(
        self,
        *args: Any,
        keyword_loss_weight: float = 0.0,
        keyword_loss_mode: str = "any",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.keyword_loss_weight = keyword_loss_weight
        self.keyword_loss_mode = keyword_loss_mode
        self._kw_sum = 0.0
        self._lm_sum = 0.0
        self._n = 0
        self._start = time.monotonic()
        self.time_box: TimeBox | None = None
        self.train_tokens = 0  # non-padding tokens seen by this process (not across resumes)

    def create_scheduler(
        self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> Any:
        """With a time box, anneal over wall-clock time (see :func:`time_cosine_lambda`)."""
        if self.time_box is None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer or self.optimizer,
                time_cosine_lambda(self.time_box, self.args.get_warmup_steps(num_training_steps)),
            )
        return self.lr_scheduler

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        keyword_ids = inputs.pop("keyword_ids")
        story_mask = inputs.pop("story_mask")
        outputs = model(**inputs)
        lm_loss = outputs.loss
        if model.training:
            self.train_tokens += int(inputs["attention_mask"].sum())
        loss = lm_loss
        if model.training and self.keyword_loss_weight > 0:
            embeddings = None
            if self.keyword_loss_mode == "cosine":
                embeddings = model.get_output_embeddings().weight
            kw = keyword_loss(
                outputs.logits, keyword_ids, story_mask, self.keyword_loss_mode, embeddings
            )
            loss = lm_loss + self.keyword_loss_weight * kw
            self._kw_sum += float(kw.detach())
        if model.training:
            self._lm_sum += float(lm_loss.detach())
            self._n += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self._n and "loss" in logs:
            elapsed = max(time.monotonic() - self._start, 1e-6)
            logs["train_tokens_seen"] = self.train_tokens
            logs["train_tok_per_s"] = round(self.train_tokens / elapsed, 1)
            logs["lm_loss"] = round(self._lm_sum / self._n, 4)
            logs["keyword_loss"] = round(self._kw_sum / self._n, 4)
            self._kw_sum = self._lm_sum = 0.0
            self._n = 0
        super().log(logs, *args, **kwargs)


@dataclass
class TimeBox:
    """A wall-clock budget that survives resumes: ``start`` is when the run first began."""

    start: float
    seconds: float

    def fraction(self) -> float:
        return (time.time() - self.start) / self.seconds if self.seconds else 0.0

    @classmethod
    def load_or_start(cls, path: Path, minutes: float) -> TimeBox:
        """Reuse the start time stored in ``path`` (a resumed run) or start the clock now."""
        if path.exists():
            stored = json.loads(path.read_text())
            if "start" in stored and float(stored.get("max_minutes", -1)) == minutes:
                return cls(float(stored["start"]), minutes * 60)
        box = cls(time.time(), minutes * 60)
        from generator.artifacts import atomic_write_json

        atomic_write_json(path, {"start": box.start, "max_minutes": minutes})
        return box


class TimeBoxCallback(TrainerCallback):
    """Stops training when the time box is spent, saving and evaluating on the way out."""

    def __init__(self, box: TimeBox) -> None:
        self.box = box

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if self.box.fraction() >= 1.0:
            logger.info("time box reached at step %d", state.global_step)
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = True


def time_cosine_lambda(
    box: TimeBox, warmup_steps: int, min_ratio: float = 0.05
) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over steps, then cosine decay over *wall-clock* time.

    On a shared CPU the step rate swings several-fold, so a step-based schedule either ends
    early or is cut off mid-decay; a time-based one always anneals exactly at the time box.
    """

    def multiplier(step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, warmup_steps))
        frac = min(1.0, max(0.0, box.fraction()))
        return warm * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))

    return multiplier


# --------------------------------------------------------------------------- pipeline


def get_tokenizer(
    model_args: ModelArguments, rows: list[dict[str, Any]], out_dir: Path
) -> PreTrainedTokenizerFast:
    from generator.prompting import format_training_example
    from generator.tokenizer import load_gpt2_tokenizer, train_bpe

    if model_args.init == "fine_tune" and model_args.tokenizer == "bpe":
        # fine-tuning keeps the pretrained model's own tokenizer (ids must match its weights)
        path = Path(model_args.pretrained_path or "")
        if (path / "tokenizer.json").exists():
            from generator.artifacts import load_tokenizer
            from generator.prompting import SPECIAL_TOKENS

            tokenizer = load_tokenizer(path)
            missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
            if missing:
                tokenizer.add_special_tokens({"additional_special_tokens": missing})
            return tokenizer
        if (path / "vocab.json").exists():
            return load_gpt2_tokenizer(path)
    if model_args.tokenizer == "gpt2":
        return load_gpt2_tokenizer(model_args.tokenizer_path or "")
    if model_args.tokenizer != "bpe":
        from generator.artifacts import load_tokenizer

        return load_tokenizer(model_args.tokenizer)
    cached = out_dir / "tokenizer"
    if (cached / "tokenizer.json").exists():  # resume: keep the ids the checkpoint used
        from generator.artifacts import load_tokenizer

        return load_tokenizer(cached)
    tokenizer = train_bpe(
        (format_training_example(r["title"], r["text"], r["keywords"]) for r in rows),
        vocab_size=model_args.vocab_size,
    )
    tokenizer.save_pretrained(str(cached))
    return tokenizer


def latest_complete_checkpoint(out_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` that was completely written.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint torn by a crash (no or
    unparsable state file) is skipped instead of breaking the resume.
    """
    candidates = []
    for path in out_dir.glob("checkpoint-*"):
        suffix = path.name.rsplit("-", 1)[-1]
        if not suffix.isdigit():
            continue
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            logger.warning("ignoring incomplete checkpoint %s", path)
            continue
        candidates.append((int(suffix), path))
    return max(candidates)[1] if candidates else None


def dataset_hash(dataset_path: str) -> str | None:
    manifest = Path(dataset_path) / "manifest.json"
    if manifest.exists():
        return json.loads(manifest.read_text()).get("sha256")
    return None


def train(
    model_args: ModelArguments, data_args: DataArguments, training_args: KeywordTrainingArguments
) -> Path:
    """Train and save a model; returns the final model directory."""
    from generator.artifacts import save_model
    from generator.dataset import load_stories
    from generator.modeling import (
        apply_lora,
        build_from_scratch,
        count_params,
        load_pretrained,
    )

    training_args.remove_unused_columns = False  # keyword_ids/story_mask are not forward args
    if training_args.include_num_input_tokens_seen in ("no", False):
        # persisted in checkpoints, so the count survives resumes (unlike trainer.train_tokens)
        training_args.include_num_input_tokens_seen = "non_padding"
    logger.info(
        "configuration: %s",
        json.dumps(to_jsonable(model_args, data_args, training_args), indent=1, default=str),
    )
    set_seed(training_args.seed)
    out_dir = Path(training_args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_rows = load_stories(data_args.dataset_path, "train", data_args.sources or None)
    val_rows = load_stories(data_args.dataset_path, "validation", data_args.sources or None)
    if not train_rows:
        raise ValueError("no training stories after the source filter")
    tokenizer = get_tokenizer(model_args, train_rows, out_dir)
    weights = parse_source_weights(data_args.source_weights)
    train_windows = build_windows(train_rows, tokenizer, data_args, training_args.seed, weights)
    val_windows = build_windows(val_rows, tokenizer, data_args, training_args.seed + 1)
    val_windows = val_windows[: data_args.max_eval_windows]
    n_tokens = sum(len(w.input_ids) for w in train_windows)
    logger.info(
        "%d train windows (%d tokens/epoch), %d validation windows",
        len(train_windows),
        n_tokens,
        len(val_windows),
    )

    if model_args.init == "from_scratch":
        model = build_from_scratch(model_args.preset, tokenizer, model_args.dropout)
    else:
        model = load_pretrained(model_args.pretrained_path or "", tokenizer)
        if model_args.lora:
            model = apply_lora(model, model_args.lora_r, model_args.lora_alpha)
    train_ds, val_ds = WindowDataset(train_windows), WindowDataset(val_windows)
    pad_id = int(tokenizer.pad_token_id)

    callbacks: list[TrainerCallback] = []
    time_box: TimeBox | None = None
    if training_args.max_minutes:
        time_box = TimeBox.load_or_start(out_dir / "time_box.json", training_args.max_minutes)
        if training_args.max_steps <= 0:  # the clock ends the run; max_steps only caps it
            training_args.max_steps = 10**9
        callbacks.append(TimeBoxCallback(time_box))

    def collator(batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate(batch, pad_id)

    trainer = KeywordTrainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=val_ds if len(val_ds) else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=callbacks,
        keyword_loss_weight=training_args.keyword_loss_weight,
        keyword_loss_mode=training_args.keyword_loss,
    )
    if time_box is not None and training_args.lr_over_time:
        trainer.time_box = time_box
    resume = latest_complete_checkpoint(out_dir)
    if resume is not None:
        logger.info("resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    metrics = dict(result.metrics)
    metrics["train_tokens_seen"] = int(trainer.state.num_input_tokens_seen)
    metrics["train_tokens_this_process"] = trainer.train_tokens
    if len(val_ds):
        eval_metrics = trainer.evaluate()
        metrics.update(eval_metrics)
        try:
            metrics["eval_perplexity"] = math.exp(eval_metrics["eval_loss"])
        except OverflowError:
            metrics["eval_perplexity"] = float("inf")
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("all", metrics)
    trainer.save_state()

    final_model = trainer.model
    if model_args.lora:
        final_model = final_model.merge_and_unload()  # type: ignore[operator]
    final_dir = Path(training_args.final_dir or out_dir / "final")
    meta = {
        "model_class": type(final_model).__name__,
        "preset": model_args.preset if model_args.init == "from_scratch" else None,
        "init": model_args.init,
        "n_params": count_params(final_model),
        "dataset_sha256": dataset_hash(data_args.dataset_path),
        "dataset_path": data_args.dataset_path,
        "tokens_per_epoch": n_tokens,
        "metrics": metrics,
        "hyperparameters": to_jsonable(model_args, data_args, training_args),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_model(final_model, tokenizer, final_dir, meta)
    return final_dir


def main(argv: list[str] | None = None) -> Path:
    from generator.config import parse_args

    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    model_args, data_args, training_args = parse_args(argv)
    return train(model_args, data_args, training_args)


if __name__ == "__main__":  # pragma: no cover
    main()

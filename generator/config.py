"""Training configuration as dataclasses (run_clm style), checked in ``__post_init__``.

Parse with :func:`parse_args` from the command line or from a single ``.json`` file; the full
configuration is logged and stored in the model's ``bedtime_model.json``. Seed hyper-parameters
keep their meaning: ``block_size``, ``num_train_epochs``, ``learning_rate``,
``keyword_loss_weight``, ``load_best_model``, ``mask_nouns``, ``labels_same_as_input``,
``cos_similarity``, ``add_space``; ``only_grimm`` is generalised to ``sources``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

KEYWORD_LOSSES = ("any", "max", "mean", "cosine")


@dataclass
class ModelArguments:
    init: str = field(
        default="from_scratch",
        metadata={
            "help": "from_scratch (a named preset) or fine_tune (local weights in pretrained_path)."
        },
    )
    preset: str = field(
        default="medium",
        metadata={"help": "Size preset for from_scratch: tiny, small, medium, large, gpt2."},
    )
    pretrained_path: str | None = field(
        default=None, metadata={"help": "Directory of pretrained GPT-2 weights for fine_tune."}
    )
    tokenizer: str = field(
        default="bpe",
        metadata={
            "help": "bpe (train a byte-level BPE on the dataset), gpt2 (GPT-2 BPE from "
            "tokenizer_path) or a directory holding tokenizer.json."
        },
    )
    tokenizer_path: str | None = field(
        default=None, metadata={"help": "GPT-2 vocab.json/merges.txt dir when tokenizer=gpt2."}
    )
    vocab_size: int = field(default=8192, metadata={"help": "BPE vocabulary when tokenizer=bpe."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout for from_scratch models."})
    lora: bool = field(
        default=False, metadata={"help": "Train LoRA adapters instead of all weights (fine_tune)."}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})

    def __post_init__(self) -> None:
        from generator.modeling import PRESETS

        if self.init not in ("from_scratch", "fine_tune"):
            raise ValueError("init must be from_scratch or fine_tune")
        if self.init == "from_scratch" and self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}")
        if self.init == "fine_tune" and not self.pretrained_path:
            raise ValueError("fine_tune needs pretrained_path (no weights can be downloaded)")
        if self.tokenizer == "gpt2" and not self.tokenizer_path:
            raise ValueError("tokenizer=gpt2 needs tokenizer_path")
        if self.tokenizer not in ("bpe", "gpt2") and not Path(self.tokenizer).is_dir():
            raise ValueError(f"tokenizer {self.tokenizer!r} is not bpe, gpt2 or a directory")
        if self.lora and self.init != "fine_tune":
            raise ValueError("lora only makes sense with init=fine_tune")
        if not 300 <= self.vocab_size <= 65536:
            raise ValueError("vocab_size must be in [300, 65536]")


@dataclass
class DataArguments:
    dataset_path: str = field(
        default="runs/data/v1",
        metadata={"help": "Directory (or file) of stories.jsonl from prepare-data."},
    )
    sources: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Keep only stories whose source starts with one of these (empty: "
            "all). The seed's only_grimm is sources=['grimm', 'books:grimms']."
        },
    )
    source_weights: str = field(
        default="",
        metadata={
            "help": "Up/down-sampling per source prefix, e.g. 'tinystories=4,snakes=1'. "
            "Fractional weights sample that share of the stories."
        },
    )
    block_size: int = field(default=256, metadata={"help": "Tokens per training window."})
    max_keywords: int = field(default=3, metadata={"help": "Keywords per prompt (1..max)."})
    keyword_dropout: float = field(
        default=0.1, metadata={"help": "Share of windows without keywords/title (unconditional)."}
    )
    title_dropout: float = field(
        default=0.0,
        metadata={
            "help": "Share of keyword-conditioned windows whose title is left out "
            "(<|keywords|> k<|title|><|story|>: the prompt the live and batch paths use with "
            "title_in_prompt=empty), so titled data also teaches the untitled prompt."
        },
    )
    add_space: bool = field(
        default=True,
        metadata={
            "help": "Keyword-loss targets are tokens of ' keyword' (as the "
            "word appears mid-sentence) rather than 'keyword'."
        },
    )
    mask_nouns: bool = field(
        default=False,
        metadata={
            "help": "Drop story positions whose target is a keyword token "
            "from the LM loss (only the keyword loss teaches them)."
        },
    )
    labels_same_as_input: bool = field(
        default=False,
        metadata={
            "help": "Also train the LM loss on the keyword/title prefix; "
            "False masks the prompt out of the labels."
        },
    )
    keyword_skip_tokens: int = field(
        default=4,
        metadata={
            "help": "Opening story tokens the keyword loss ignores, so the model is not rewarded "
            "for starting the story with a bare keyword."
        },
    )
    max_eval_windows: int = field(default=256, metadata={"help": "Cap on validation windows."})

    def __post_init__(self) -> None:
        if not 16 <= self.block_size <= 2048:
            raise ValueError("block_size must be in [16, 2048]")
        if not 1 <= self.max_keywords <= 8:
            raise ValueError("max_keywords must be in [1, 8]")
        if not 0.0 <= self.keyword_dropout < 1.0:
            raise ValueError("keyword_dropout must be in [0, 1)")
        if not 0.0 <= self.title_dropout <= 1.0:
            raise ValueError("title_dropout must be in [0, 1]")
        parse_source_weights(self.source_weights)  # raises on malformed input


@dataclass
class KeywordTrainingArguments(TrainingArguments):
    """Trainer arguments plus the keyword loss and the CPU time box."""

    keyword_loss_weight: float = field(
        default=0.5, metadata={"help": "Total loss = LM loss + weight x keyword loss (0: plain)."}
    )
    keyword_loss: str = field(
        default="any",
        metadata={
            "help": "any (noisy-OR: P(keyword appears at least once)), max, "
            "mean (over story positions) or cosine."
        },
    )
    cos_similarity: bool = field(
        default=False,
        metadata={
            "help": "Seed option: same as keyword_loss=cosine (expected "
            "embedding vs keyword embedding)."
        },
    )
    load_best_model: bool = field(
        default=True,
        metadata={"help": "Keep and finally load the checkpoint with the best validation LM loss."},
    )
    max_minutes: float = field(
        default=0.0,
        metadata={
            "help": "Stop (saving a checkpoint) after this many minutes; the "
            "LR schedule is sized to fit (0: no time box)."
        },
    )
    lr_over_time: bool = field(
        default=True,
        metadata={
            "help": "With max_minutes: warm up over warmup_steps, then cosine-decay the LR over "
            "wall-clock time so it anneals exactly when the time box ends (robust to a shared "
            "CPU whose step rate varies)."
        },
    )
    final_dir: str | None = field(
        default=None,
        metadata={"help": "Where the finished model is saved (default <output_dir>/final)."},
    )

    def __post_init__(self) -> None:
        if self.cos_similarity:
            self.keyword_loss = "cosine"
        if self.keyword_loss not in KEYWORD_LOSSES:
            raise ValueError(f"keyword_loss must be one of {KEYWORD_LOSSES}")
        if self.keyword_loss_weight < 0:
            raise ValueError("keyword_loss_weight must be >= 0")
        if self.max_minutes < 0:
            raise ValueError("max_minutes must be >= 0")
        if self.load_best_model:
            self.load_best_model_at_end = True
            self.metric_for_best_model = "eval_loss"
            self.greater_is_better = False
        super().__post_init__()


def parse_source_weights(spec: str) -> dict[str, float]:
    """``'tinystories=4,snakes=0.5'`` -> ``{'tinystories': 4.0, 'snakes': 0.5}``."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"source weight {part!r} is not NAME=WEIGHT")
        weight = float(value)
        if weight < 0:
            raise ValueError(f"source weight for {name} must be >= 0")
        weights[name.strip()] = weight
    return weights


def parse_args(
    args: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, KeywordTrainingArguments]:
    """Parse the three dataclasses from argv, or from a ``.json`` file argument optionally
    followed by ``--field value`` overrides (``bedtime train CONFIG.json --max_minutes 5``)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, DataArguments, KeywordTrainingArguments))
    if args is None:
        args = sys.argv[1:]
    if args and len(args) == 1 and args[0].endswith(".json"):
        return parser.parse_json_file(json_file=str(Path(args[0]).resolve()))  # type: ignore[return-value]
    if args and args[0].endswith(".json"):
        config = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        args = [*json_as_arguments(config), *args[1:]]  # later flags win
    return parser.parse_args_into_dataclasses(args=args)  # type: ignore[return-value]


def json_as_arguments(config: dict[str, Any]) -> list[str]:
    """A JSON config as ``--field value`` arguments (lists as several values; nulls left out)."""
    out: list[str] = []
    for name, value in config.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out += [f"--{name}", str(value).lower()]
        elif isinstance(value, list):
            out += [f"--{name}", *(str(item) for item in value)]
        elif isinstance(value, dict):
            out += [f"--{name}", json.dumps(value)]
        else:
            out += [f"--{name}", str(value)]
    return out


def to_jsonable(*configs: Any) -> dict[str, Any]:
    """All config fields as plain JSON (for logs and bedtime_model.json)."""
    out: dict[str, Any] = {}
    for config in configs:
        if isinstance(config, TrainingArguments):
            values = config.to_dict()
        else:
            values = dataclasses.asdict(config)
        out[type(config).__name__] = json.loads(json.dumps(values, default=str))
    return out

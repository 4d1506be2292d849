"""The reader model: a small learned guess at whether a parent reader would keep a story.

Parent readers read every story the judge approves and keep only about one in three
(``bench/catalogue_read/``: 1,042 session-5 verdicts, 779 session-7 reads). This module turns a
story into a few cheap numbers the generator can compute at generation time and scores them
with an L2-regularised logistic regression trained on those verdicts:

* the storyteller's own per-token log-probabilities of the reply given its chat request
  (:func:`logprob_features`: mean, spread, low-probability share, worst sentence, ending...),
  from ``ctranslate2.Generator.score_batch`` (:func:`score_replies`);
* text statistics and the judge's soft measures (:func:`text_features`: length, sentences,
  distinct names, numbers, dialogue, repetition, wound-up ending, keyword placement...);
* all-MiniLM-L6-v2 sentence embeddings (the pinned base encoder of ``safety.meaning``):
  their mean over the story, which enters the model as one 768-weight vector, and how alike
  neighbouring sentences and the story's centre are (:func:`embedding_features`).

The weights, the standardisation and a training record live in ``reader_model.json`` next to
this file (a few kB); ``bench/bench_reader_model.py --write`` retrains it. It is an option of
best-of-N (``StoryConfig.reader_rank``, ``StoryConfig.reader_min_score``), off by default: see
the training record for what it was measured to do. The features and the model are torch-free
(numpy); only :class:`ReaderScorer` loads the sentence encoder.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODEL_PATH = Path(__file__).with_name("reader_model.json")

_WORD_RE = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?")
_NUMBER_RE = re.compile(
    r"\b(?:\d+(?:[.,]\d+)?|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty"
    r"|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|dozens?)\b",
    re.I,
)
_QUOTE_RE = re.compile(r"\"[^\"]*\"|\u201c[^\u201d]*\u201d")
_SUDDEN_RE = re.compile(r"\b(?:suddenly|all of a sudden|out of nowhere|however)\b", re.I)
#: What parent readers removed as unsafe most often: a child alone, near water, with a stranger.
_RISK_RE = re.compile(
    r"\b(?:alone|lost|stranger|strangers|ran away|run away|river|lake|ocean|sea|deep|fell|fall"
    r"|scared|afraid|frightened|danger|dangerous|storm|cried|crying|hurt|dark)\b",
    re.I,
)
_SLEEPY_RE = re.compile(
    r"\b(?:sleep|asleep|sleepy|bed|dream|dreams|dreaming|goodnight|good night|yawn\w*|cosy|cozy"
    r"|snuggl\w*|tucked)\b",
    re.I,
)
#: Token strings (byte-level BPE) that end a sentence.
_SENTENCE_END_TOKEN_RE = re.compile(r"[.!?]")
LOW_LOGPROB = math.log(0.05)


def text_features(title: str, text: str, keywords: Sequence[str]) -> dict[str, float]:
    """Cheap, torch-free numbers about one story (the judge's soft measures among them)."""
    from generator.generation.assemble import quality_metrics
    from generator.storyteller.names import character_names, name_collisions, name_drift
    from generator.storyteller.quality import keyword_mentions
    from generator.storyteller.shape import sentences, shape_problems, wound_up_ending

    metrics = quality_metrics(text)
    found = sentences(text) or [text]
    lengths = np.array([len(_WORD_RE.findall(s)) for s in found], dtype=float)
    words = max(1, metrics["words"])
    names = character_names(text)
    quoted = sum(len(m.group(0)) for m in _QUOTE_RE.finditer(text))
    first_mentions = []
    mentions = 0
    for keyword in keywords:
        starts = keyword_mentions(keyword, text)
        mentions += len(starts)
        first_mentions.append(starts[0] / max(1, len(text)) if starts else 1.0)
    last_two = " ".join(found[-2:])
    return {
        "words": float(words),
        "log_words": math.log(words),
        "sentences": float(len(found)),
        "sentence_words_mean": float(lengths.mean()),
        "sentence_words_std": float(lengths.std()),
        "sentence_words_max": float(lengths.max()),
        "paragraphs": float(len([p for p in text.split("\n") if p.strip()])),
        "distinct_1": float(metrics["distinct_1"]),
        "distinct_2": float(metrics["distinct_2"]),
        "repetition_ratio": float(metrics["repetition_ratio"]),
        "unknown_words": float(metrics["unknown_words"]),
        "names": float(len(names)),
        "names_per_100_words": 100.0 * len(names) / words,
        "numbers_per_100_words": 100.0 * len(_NUMBER_RE.findall(text)) / words,
        "dialogue_share": quoted / max(1, len(text)),
        "exclamations_per_sentence": text.count("!") / len(found),
        "questions_per_sentence": text.count("?") / len(found),
        "sudden_per_100_words": 100.0 * len(_SUDDEN_RE.findall(text)) / words,
        "risk_words_per_100_words": 100.0 * len(_RISK_RE.findall(text)) / words,
        "sleepy_words_in_ending": float(len(_SLEEPY_RE.findall(last_two))),
        "wound_up_ending": float(wound_up_ending(text) is not None),
        "shape_problems": float(len(shape_problems(text))),
        "name_drift": float(len(name_drift(text))),
        "name_collisions": float(len(name_collisions(text))),
        "keywords": float(len(keywords)),
        "keyword_mentions_per_100_words": 100.0 * mentions / words,
        "keyword_first_mention": float(max(first_mentions, default=1.0)),
        "title_words": float(len(title.split())),
    }


def logprob_features(tokens: Sequence[str], logprobs: Sequence[float]) -> dict[str, float]:
    """Statistics of the storyteller's log-probability of each reply token.

    ``tokens``/``logprobs``: the reply ("Title: ...\\n\\n<story>" then the end token) as the
    tokenizer's token strings and the model's log-probability of each given what came before."""
    if len(tokens) != len(logprobs) or not tokens:
        raise ValueError("tokens and logprobs must be non-empty and of the same length")
    lp = np.asarray(logprobs, dtype=float)
    body_start = next((i + 1 for i, t in enumerate(tokens) if "\u010a" in t or "\n" in t), 0)
    body = lp[body_start:] if body_start < len(lp) else lp
    sentence_means: list[float] = []
    start = body_start
    for i in range(body_start, len(tokens)):
        if _SENTENCE_END_TOKEN_RE.search(tokens[i]) or i == len(tokens) - 1:
            if i + 1 - start >= 3:
                sentence_means.append(float(lp[start : i + 1].mean()))
            start = i + 1
    sentence_means = sentence_means or [float(body.mean())]
    half = len(body) // 2
    tail = body[-max(1, len(body) // 5) :]
    return {
        "lp_mean": float(body.mean()),
        "lp_std": float(body.std()),
        "lp_p05": float(np.percentile(body, 5)),
        "lp_low_share": float((body < LOW_LOGPROB).mean()),
        "lp_sentence_min": float(min(sentence_means)),
        "lp_sentence_p10": float(np.percentile(sentence_means, 10)),
        "lp_sentence_std": float(np.std(sentence_means)),
        "lp_second_half_drop": float(body[:half].mean() - body[half:].mean()) if half else 0.0,
        "lp_ending": float(tail.mean()),
        "lp_title": float(lp[:body_start].mean()) if body_start else float(lp[0]),
        "lp_end_token": float(lp[-1]),
    }


def score_replies(
    generator: Any, tokenizer: Any, prompts: Sequence[Sequence[str]], replies: Sequence[str]
) -> list[tuple[list[str], list[float]]]:
    """(reply tokens, their log-probabilities) for each reply after its prompt tokens, with
    the storyteller's ``ctranslate2.Generator`` (one forward pass each, batched)."""
    from generator.storyteller.prompts import END_TOKEN

    batch, prompt_lengths = [], []
    for prompt, reply in zip(prompts, replies, strict=True):
        batch.append([*prompt, *tokenizer.tokenize(reply), END_TOKEN])
        prompt_lengths.append(len(prompt))
    results = generator.score_batch(batch, max_batch_size=8) if batch else []
    out = []
    for tokens, start, result in zip(batch, prompt_lengths, results, strict=True):
        out.append((tokens[start:], [float(x) for x in list(result.log_probs)[start - 1 :]]))
    return out


def embedding_features(vectors: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """(mean embedding, cohesion features) of a story's sentence embeddings (rows of
    :class:`safety.meaning.Embedder` output: mean- then max-pooled halves). Cohesion uses the
    mean-pooled half: how alike neighbouring sentences are, and each sentence and the story's
    centre, and the first and last sentence."""
    vectors = np.asarray(vectors, dtype=float)
    if vectors.ndim != 2 or not len(vectors):
        raise ValueError("need one embedding row per sentence, at least one")
    half = vectors[:, : vectors.shape[1] // 2]
    unit = half / np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
    centre = unit.mean(0) / max(float(np.linalg.norm(unit.mean(0))), 1e-9)
    adjacent = (unit[1:] * unit[:-1]).sum(1) if len(unit) > 1 else np.ones(1)
    to_centre = unit @ centre
    return vectors.mean(0), {
        "adj_mean": float(adjacent.mean()),
        "adj_min": float(adjacent.min()),
        "adj_p10": float(np.percentile(adjacent, 10)),
        "centroid_mean": float(to_centre.mean()),
        "centroid_min": float(to_centre.min()),
        "first_last": float(unit[0] @ unit[-1]),
    }


def story_features(
    title: str,
    text: str,
    keywords: Sequence[str],
    tokens: Sequence[str] | None = None,
    logprobs: Sequence[float] | None = None,
) -> dict[str, float]:
    """Every feature of one story; the log-probability ones only when ``logprobs`` is given."""
    features = text_features(title, text, keywords)
    if tokens is not None and logprobs is not None:
        features.update(logprob_features(tokens, logprobs))
    return features


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression (Newton's method; the bias is not penalised).
    ``x`` should be standardised. Returns (weights, bias)."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.full(d + 1, float(l2))
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        gradient = design.T @ (p - y) + penalty * beta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])


@dataclass
class ReaderModel:
    """Logistic regression over named features, standardised with the training mean/std."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    record: dict[str, Any] = field(default_factory=dict)
    #: Weights on the raw mean sentence embedding (the principal components the model was
    #: fitted on, folded back into one vector); None: no embedding.
    embedding_weights: np.ndarray | None = None

    @classmethod
    def fit(
        cls,
        rows: Sequence[Mapping[str, float]],
        labels: Sequence[int],
        features: Sequence[str],
        l2: float = 1.0,
        record: dict[str, Any] | None = None,
    ) -> ReaderModel:
        x = np.array([[row[f] for f in features] for row in rows], dtype=float)
        mean, scale = x.mean(0), x.std(0)
        scale[scale < 1e-9] = 1.0
        weights, bias = fit_logistic((x - mean) / scale, np.asarray(labels, dtype=float), l2)
        return cls(list(features), mean, scale, weights, bias, dict(record or {}))

    def needs_logprobs(self) -> bool:
        return any(f.startswith("lp_") for f in self.features)

    def needs_embedding(self) -> bool:
        return self.embedding_weights is not None or "centroid_mean" in self.features

    def scores(
        self, rows: Sequence[Mapping[str, float]], embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """The probability that a reader keeps each story (``embeddings``: each story's mean
        sentence embedding, needed when the model has embedding weights)."""
        missing = [f for f in self.features if rows and f not in rows[0]]
        if missing:
            raise KeyError(f"features missing: {', '.join(missing)}")
        x = np.array([[row[f] for f in self.features] for row in rows], dtype=float)
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        if self.embedding_weights is not None:
            if embeddings is None:
                raise KeyError("features missing: the mean sentence embedding")
            z = z + np.asarray(embeddings, dtype=float).reshape(len(rows), -1) @ (
                self.embedding_weights
            )
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def score(self, row: Mapping[str, float], embedding: np.ndarray | None = None) -> float:
        return float(self.scores([row], None if embedding is None else embedding[None])[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "logistic",
            "features": self.features,
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [round(float(v), 6) for v in self.weights],
            "bias": round(self.bias, 6),
            "embedding_weights": None
            if self.embedding_weights is None
            else [round(float(v), 6) for v in self.embedding_weights],
            "record": self.record,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReaderModel:
        if data.get("kind") != "logistic":
            raise ValueError("not a reader model (kind must be 'logistic')")
        n = len(data["features"])
        arrays = [np.asarray(data[k], dtype=float) for k in ("mean", "scale", "weights")]
        if any(a.shape != (n,) for a in arrays):
            raise ValueError("reader model: mean, scale and weights must match the features")
        embedding = data.get("embedding_weights")
        return cls(
            list(data["features"]),
            *arrays,
            float(data["bias"]),
            dict(data["record"]),
            None if embedding is None else np.asarray(embedding, dtype=float),
        )

    def save(self, path: str | Path = MODEL_PATH) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")


def load(path: str | Path | None = None) -> ReaderModel:
    return ReaderModel.from_json(json.loads(Path(path or MODEL_PATH).read_text("utf-8")))


class ReaderScorer:
    """Scores stories with a :class:`ReaderModel` at generation time: computes the features
    the model needs (the sentence encoder is loaded on first use; log-probabilities come from
    ``logprobs``, a callable ``[(keywords, title, text)] -> [(tokens, logprobs)]``)."""

    def __init__(self, model: ReaderModel | None = None, logprobs: Any = None) -> None:
        self.model = model or load()
        self.logprobs = logprobs
        self._embedder: Any = None

    def embed(self, text: str) -> np.ndarray:
        from safety.meaning import Embedder, model_dir, split_sentences

        if self._embedder is None:
            self._embedder = Embedder(model_dir(), tuned=None)  # the pinned base encoder
        return np.asarray(self._embedder(split_sentences(text) or [text]))

    def __call__(self, stories: Sequence[tuple[Sequence[str], str, str]]) -> list[float]:
        """P(a parent reader keeps it) for each (keywords, title, text)."""
        if not stories:
            return []
        rows = [text_features(title, text, keywords) for keywords, title, text in stories]
        means = None
        if self.model.needs_embedding():
            pairs = [embedding_features(self.embed(text)) for _, _, text in stories]
            means = np.stack([mean for mean, _ in pairs])
            for row, (_, cohesion) in zip(rows, pairs, strict=True):
                row.update(cohesion)
        if self.model.needs_logprobs():
            if self.logprobs is None:
                raise ValueError("this reader model needs the storyteller's log-probabilities")
            for row, (tokens, lp) in zip(rows, self.logprobs(stories), strict=True):
                row.update(logprob_features(tokens, lp))
        return [float(v) for v in self.model.scores(rows, means)]


def apply_reader(
    judgements: Sequence[Any],
    keywords: Sequence[str],
    scorer: Any,
    min_score: float = 0.0,
) -> None:
    """Score the accepted judgements (``metrics["reader_score"]``); with ``min_score`` > 0,
    reject those scored below it. ``scorer``: a :class:`ReaderScorer` or any callable like it."""
    accepted = [j for j in judgements if j.accepted]
    scores = scorer([(keywords, j.title or "", j.text) for j in accepted])
    for judgement, score in zip(accepted, scores, strict=True):
        judgement.metrics["reader_score"] = round(score, 4)
        if min_score > 0 and score < min_score:
            judgement.problems.append(
                f"reader model: unlikely to be kept ({score:.2f} < {min_score:.2f})"
            )

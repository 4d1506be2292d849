"""A probe on the storyteller's hidden states as the meaning check's features (measured, not wired).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_lm_probe.py \\
        --corpus ../shared/corpus/train --cache-dir /work/tmp/lm_probe

Hypothesis: a decoder LM (the prepared storyteller, SmolLM2-135M-Instruct + our LoRA, 30 layers,
hidden 576) models what happens next in a story, so its hidden states separate harmful deeds
from harmless ones better than frozen all-MiniLM-L6-v2 embeddings (topic and mood).

Features: each sentence is fed after one ``<|endoftext|>`` token (an attention sink: a decoder's
first position carries huge activations that would swamp any pooling), optionally after a
neutral prefix too (``--variants plain context``: "A bedtime story sentence:"); the hidden
states of the sentence's own tokens only (no sink, prefix or padding) are mean- and max-pooled
at ``--layers``. Each pooled block is standardised on the training sentences and scaled to the
norm of the MiniLM block (sqrt 2). Features are cached per variant in ``--cache-dir`` (npz) so
reruns are quick; MiniLM embeddings go through ``safety.training.embedding_cache``.

Heads: ``safety.training.train_mlp`` (what ``bedtime safety train`` trains: 256 ReLU, 7 classes,
300 full-batch AdamW steps, seed 0) on (a) the LM features of one layer, (b) those concatenated
with the MiniLM features, (c) MiniLM alone (the shipped recipe, as a control), each trained on
``all_training_examples`` with and without the third hand-written set of commit 858cd8f
(``train_more.jsonl``, read with ``git show``, counted three times as it was there).

Selection, fixed before any evaluation figure is printed: each configuration's threshold is
the shipped rule (``choose_thresholds``: <= 2% of the development set's corpus-suitable and <= 3%
of its hand-written hard suitable sentences flagged, rounded up); the chosen configuration has
the highest development recall at its threshold, ties by development AUC. Only then is the
evaluation set scored: the chosen configuration and the shipped head (``meaning_head.json``)
first, then, labelled as a diagnostic, every other configuration (choosing among those after
seeing them would not be clean). Last, for the chosen configuration and the shipped head: the
starter catalogue's stories the meaning check flags (any title or sentence at or above the
threshold, short pieces read with their neighbour as ``safety.gate.check_stories`` does), and
the held-out half of the parents' read (``catalogue_split``) flagged by the meaning check alone
and by the whole gate (words + meaning + calm ending).

``--stage features`` only fills the caches (training, development, evaluation, the third set).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safety import meaning as meaning_check  # noqa: E402
from safety.training import (  # noqa: E402
    EVAL_PATH,
    Example,
    _round_up,
    all_training_examples,
    auc,
    catalogue_split,
    choose_thresholds,
    development_examples,
    embedding_cache,
    evaluate,
    read_catalogue,
    train_mlp,
)

MODEL_DIR = Path.home() / ".local/share/bedtime-stories/models/storyteller/hf"
MORE_AT = "858cd8f:safety/data/train_more.jsonl"
CATALOGUE = ROOT / "db" / "data" / "starter_catalogue.jsonl"
PREFIX = "A bedtime story sentence:"
SINK_ID = 0  # <|endoftext|>
HIDDEN = 576


# --- features -------------------------------------------------------------------------------


class LMFeatures:
    """Pooled hidden states of the storyteller, per sentence, cached on disk per variant."""

    def __init__(
        self,
        model_dir: Path,
        cache: Path,
        variant: str,
        layers: Sequence[int],
        batch: int,
        depth: int = 0,
    ) -> None:
        self.model_dir, self.cache, self.variant = model_dir, cache, variant
        self.layers, self.batch = list(layers), batch
        self.vectors: dict[str, np.ndarray] = {}  # text -> (len(layers), 2 * HIDDEN) float32
        #: layer -> text -> (2 * HIDDEN,): sentences extracted by a shallower pass only
        self.extra: dict[int, dict[str, np.ndarray]] = {}
        self.depth = depth  # run only this many decoder layers (0: all)
        self._model: Any = None
        self.seconds = 0.0
        self.extracted = 0
        if cache.is_file():
            with np.load(cache, allow_pickle=False) as data:
                if list(data["layers"]) == self.layers and str(data["variant"]) == variant:
                    self.vectors.update(zip(data["texts"].tolist(), data["vectors"], strict=True))

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        self._model = AutoModel.from_pretrained(str(self.model_dir), dtype=torch.float32).eval()
        if self.depth and self.depth < len(self._model.layers):
            # Only the layers up to the one probed: hidden_states[depth] is then the same
            # tensor as in the full model once the final norm (applied to the last entry) is off.
            self._model.layers = self._model.layers[: self.depth]
            self._model.config.num_hidden_layers = self.depth
            self._model.norm = torch.nn.Identity()
        self.prefix_ids = (
            self.tokenizer(PREFIX, add_special_tokens=False)["input_ids"]
            if self.variant == "context"
            else []
        )

    def _ids(self, text: str) -> tuple[list[int], int]:
        """Token ids (sink, prefix, sentence) and where the sentence starts."""
        lead = [SINK_ID, *self.prefix_ids]
        body = self.tokenizer((" " if self.prefix_ids else "") + text, add_special_tokens=False)
        return lead + body["input_ids"][:126], len(lead)

    def save(self) -> None:
        texts = list(self.vectors)
        tmp = self.cache.with_suffix(".tmp.npz")
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            tmp,
            variant=np.array(self.variant),
            layers=np.array(self.layers),
            texts=np.array(texts),
            vectors=np.stack([self.vectors[t] for t in texts]).astype(np.float32),
        )
        tmp.replace(self.cache)

    def extract(self, texts: Sequence[str], label: str = "") -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if not missing:
            return
        if self._model is None:
            self._load()
        from generator.evaluate import pad_batch

        torch = self._torch
        encoded = [self._ids(t) for t in missing]
        order = sorted(range(len(missing)), key=lambda i: len(encoded[i][0]))
        print(f"  [{self.variant}] extracting {len(missing)} {label} sentences", flush=True)
        started, since_save = time.perf_counter(), 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch):
                chunk = order[start : start + self.batch]
                ids, attention, pool_mask = pad_batch([encoded[i] for i in chunk], 2)
                states = self._model(
                    input_ids=ids, attention_mask=attention, output_hidden_states=True
                ).hidden_states
                mask = pool_mask.unsqueeze(-1)
                count = mask.sum(1).clamp(min=1)
                pooled = []
                for layer in self.layers:
                    h = states[layer].float()
                    mean = (h * mask).sum(1) / count
                    peak = h.masked_fill(~mask, -1e9).max(1).values
                    pooled.append(torch.cat([mean, peak], dim=1))
                block = torch.stack(pooled, dim=1).numpy()
                for row, i in enumerate(chunk):
                    self.vectors[missing[i]] = block[row]
                since_save += len(chunk)
                if since_save >= 2000:
                    self.save()
                    since_save = 0
                    done = start + len(chunk)
                    rate = done / (time.perf_counter() - started)
                    print(f"    {done}/{len(missing)}  {rate:.1f} sentences/s", flush=True)
        self.seconds += time.perf_counter() - started
        self.extracted += len(missing)
        self.save()

    def matrix(self, texts: Sequence[str], layer: int) -> np.ndarray:
        index, extra = self.layers.index(layer), self.extra.get(layer, {})
        return np.stack([self.vectors[t][index] if t in self.vectors else extra[t] for t in texts])

    def has(self, text: str, layer: int) -> bool:
        return text in self.vectors or text in self.extra.get(layer, {})

    def shallow(self, layer: int, cache: Path) -> LMFeatures:
        """A pass that runs only up to ``layer`` (stories: much cheaper for low layers), checked
        against this full pass on a few cached sentences; its vectors land in :attr:`extra`."""
        other = LMFeatures(self.model_dir, cache, self.variant, [layer], self.batch, depth=layer)
        probe = [t for t in list(self.vectors)[:8] if t not in other.vectors]
        check = LMFeatures(self.model_dir, cache.with_name("unused.npz"), self.variant, [layer],
                           self.batch, depth=layer)  # fmt: skip
        check.save = lambda: None  # type: ignore[method-assign]
        check.extract(probe, "check")
        for text in probe:
            full = self.vectors[text][self.layers.index(layer)]
            if not np.allclose(check.vectors[text][0], full, rtol=1e-3, atol=1e-3):
                raise RuntimeError(f"the truncated model disagrees with the full one at {layer}")
        return other


def minilm(texts: Sequence[str]) -> np.ndarray:
    return meaning_check.embed(list(texts))


@dataclass
class Scaler:
    """Per-dimension standardisation fitted on training rows, then scaled to norm ~sqrt(2)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        std = x.std(axis=0) + 1e-6
        return cls(x.mean(axis=0), std * np.sqrt(x.shape[1] / 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale).astype(np.float32)


@dataclass(frozen=True)
class Config:
    variant: str  # "plain" / "context", or "-" for MiniLM alone
    layer: int  # 0 for MiniLM alone
    with_minilm: bool
    more: bool

    @property
    def name(self) -> str:
        data = "+more" if self.more else "base"
        if self.layer == 0:
            return f"MiniLM alone (shipped recipe), {data}"
        feats = f"LM {self.variant} L{self.layer}" + (" + MiniLM" if self.with_minilm else "")
        return f"{feats}, {data}"


def features_for(
    config: Config, lm: dict[str, LMFeatures], train_texts: Sequence[str]
) -> Callable[[Sequence[str]], np.ndarray]:
    """The configuration's feature function (the LM block's scaler fitted on ``train_texts``)."""
    if config.layer == 0:
        return minilm
    source = lm[config.variant]
    scaler = Scaler.fit(source.matrix(list(dict.fromkeys(train_texts)), config.layer))

    def build(texts: Sequence[str]) -> np.ndarray:
        source.extract([t for t in texts if not source.has(t, config.layer)], "uncached")
        block = scaler(source.matrix(texts, config.layer))
        return np.concatenate([block, minilm(texts)], axis=1) if config.with_minilm else block

    return build


# --- heads and figures ----------------------------------------------------------------------


@dataclass
class Trained:
    config: Config
    head: meaning_check.Head
    feats: Callable[[Sequence[str]], np.ndarray]
    dev_recall: float
    dev_false_alarms: float
    dev_auc: float
    dev_counts: tuple[int, int, int, int]
    seconds: float

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        return self.head.probabilities(self.feats(texts)) if texts else np.zeros((0, 7))


def unsuitable(head: meaning_check.Head, probs: np.ndarray) -> np.ndarray:
    return 1.0 - probs[:, head.classes.index(meaning_check.SUITABLE)]


def train_config(
    config: Config,
    training: Sequence[Example],
    dev: Sequence[Example],
    lm: dict[str, LMFeatures],
) -> Trained:
    started = time.perf_counter()
    texts = [e.text for e in training]
    feats = features_for(config, lm, texts)
    layers = train_mlp(feats(texts), [e.label for e in training], seed=0)
    probe = meaning_check.Head(layers, meaning_check.CLASSES, 0.5, 0.5, "probe", {})
    dev_scores = unsuitable(probe, probe.probabilities(feats([e.text for e in dev]))).tolist()
    sentence, ending = (_round_up(t) for t in choose_thresholds(dev, dev_scores, 0.02, 0.04))
    head = meaning_check.Head(
        layers, meaning_check.CLASSES, sentence, ending, f"probe-{config.name}", {}
    )
    figures = evaluate(dev, [s >= sentence for s in dev_scores], dev_scores)
    return Trained(
        config,
        head,
        feats,
        figures.recall,
        figures.false_alarm_rate,
        auc(dev, dev_scores),
        (figures.tp, figures.fn, figures.fp, figures.tn),
        time.perf_counter() - started,
    )


def choose(trained: Sequence[Trained]) -> Trained:
    """The selection rule, fixed in advance: highest development recall at the shipped rule's
    threshold, ties by development AUC."""
    return max(trained, key=lambda t: (round(t.dev_recall, 6), t.dev_auc))


def report_eval(
    label: str, examples: Sequence[Example], scores: Sequence[float], threshold: float
) -> None:
    figures = evaluate(examples, [s >= threshold for s in scores], scores)
    print(f"\n{label} (threshold {threshold}), AUC {auc(examples, scores):.3f}")
    print(figures.report())


def as_judge(probs_of: Callable[[Sequence[str]], np.ndarray], head: meaning_check.Head) -> Any:
    """A stand-in for ``safety.meaning.judge_sentences`` that judges with this head."""

    def judge(sentences: Sequence[str], _head: Any = None) -> list[meaning_check.SentenceJudgement]:
        if not sentences:
            return []
        probs = probs_of(list(sentences))
        suitable = head.classes.index(meaning_check.SUITABLE)
        out = []
        for sentence, row in zip(sentences, probs, strict=True):
            other = row.copy()
            other[suitable] = -1.0
            out.append(
                meaning_check.SentenceJudgement(
                    sentence, float(1.0 - row[suitable]), head.classes[int(other.argmax())]
                )
            )
        return out

    return judge


class UsingHead:
    """Within the block, the gate's meaning layer judges with ``head`` through ``probs_of``."""

    def __init__(
        self, head: meaning_check.Head, probs_of: Callable[[Sequence[str]], np.ndarray]
    ) -> None:
        self.head, self.probs_of = head, probs_of

    def __enter__(self) -> None:
        self.saved = (meaning_check.judge_sentences, meaning_check.load_head)
        meaning_check.judge_sentences = as_judge(self.probs_of, self.head)
        meaning_check.load_head = lambda path=None: self.head  # type: ignore[assignment]

    def __exit__(self, *exc: object) -> None:
        meaning_check.judge_sentences, meaning_check.load_head = self.saved


def story_pieces(stories: Sequence[tuple[str, str]]) -> list[tuple[list[str], dict[str, str]]]:
    """Per story, what the gate's meaning layer reads: title and sentences, short contexts."""
    from safety.gate import short_contexts, split_title

    out = []
    for title, text in stories:
        title_s, body = split_title(title), meaning_check.split_sentences(text)
        out.append(([*title_s, *body], short_contexts(title_s, body)))
    return out


def meaning_flags(
    pieces: Sequence[tuple[list[str], dict[str, str]]],
    probs_of: Callable[[Sequence[str]], np.ndarray],
    head: meaning_check.Head,
) -> list[list[tuple[str, float]]]:
    """Per story, its pieces at or above the head's threshold (short ones only when they also
    fail with their neighbour, as ``check_stories`` reads them)."""
    every = list(dict.fromkeys(s for sent, ctx in pieces for s in (*sent, *ctx.values())))
    score = dict(zip(every, unsuitable(head, probs_of(every)).tolist(), strict=True))
    flagged = []
    for sentences, ctx in pieces:
        found = []
        for s in sentences:
            value = min(score[s], score[ctx[s]]) if s in ctx else score[s]
            if value >= head.sentence_threshold:
                found.append((s, value))
        flagged.append(found)
    return flagged


def read_more() -> list[Example]:
    text = subprocess.run(
        ["git", "show", MORE_AT], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [
        Example(d["text"], d["label"], d.get("source", "train_more"))
        for d in map(json.loads, filter(str.strip, text.splitlines()))
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="shared/corpus/train")
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="the storyteller (hf/)")
    parser.add_argument("--cache-dir", type=Path, default=Path("/work/tmp/lm_probe"))
    parser.add_argument("--layers", type=int, nargs="+", default=[6, 12, 18, 24, 30])
    parser.add_argument("--variants", nargs="+", default=["plain"], choices=["plain", "context"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--stage", choices=["features", "all"], default="all")
    parser.add_argument("--no-catalogue", action="store_true", help="skip the story-level part")
    parser.add_argument("--show", type=int, default=8, help="flagged stories / misses to list")
    args = parser.parse_args()

    import torch

    torch.manual_seed(0)
    from safety.gate import check_stories, check_text
    from safety.training import read_jsonl

    training = all_training_examples(args.corpus, 0)
    more = read_more()
    dev = development_examples(args.corpus, training)
    # development_examples drops what training holds: the third set must not change it
    assert not {e.text for e in more} & {e.text for e in dev}, "the third set overlaps dev"
    evaluation = read_jsonl(EVAL_PATH)
    eval_pieces = [
        s
        for e in evaluation
        for s in meaning_check.split_sentences(e.text)
        if len(s.split()) >= 3  # what check_text judges
    ]
    print(
        f"training {len(training)} (+{len(more)} x3 third set), development {len(dev)}, "
        f"evaluation {len(evaluation)}"
    )
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    lm = {
        v: LMFeatures(args.model, args.cache_dir / f"lm_{v}.npz", v, args.layers, args.batch)
        for v in args.variants
    }
    everything = [e.text for e in (*training, *more, *dev, *evaluation)] + eval_pieces
    with embedding_cache(args.cache_dir / "minilm.npz"):
        minilm(list(dict.fromkeys(everything)))
        for source in lm.values():
            source.extract(everything, "training/dev/eval")
            if source.extracted:
                print(
                    f"  [{source.variant}] {source.extracted} sentences in {source.seconds:.0f} s"
                    f": {source.extracted / source.seconds:.1f} sentences/s "
                    f"(torch threads {torch.get_num_threads()})"
                )
        if args.stage == "features":
            return 0

        print("\n== development set (thresholds and the choice are made here) ==")
        print(f"{'configuration':44s} {'thresh':>7s} {'recall':>7s} {'f.a.':>6s} {'AUC':>6s} "
              "  tp/fn/fp/tn      s")  # fmt: skip
        trained: list[Trained] = []

        def run(config: Config) -> Trained:
            result = train_config(config, training + (more * 3 if config.more else []), dev, lm)
            trained.append(result)
            tp, fn, fp, tn = result.dev_counts
            print(
                f"{config.name:44s} {result.head.sentence_threshold:7.4f} "
                f"{result.dev_recall:7.1%} {result.dev_false_alarms:6.1%} {result.dev_auc:6.3f} "
                f"  {tp}/{fn}/{fp}/{tn}  {result.seconds:5.0f}",
                flush=True,
            )
            return result

        # Stage 1: the layer (and variant), LM features alone, the shipped training data.
        stage1 = [
            run(Config(v, layer, False, False)) for v in args.variants for layer in args.layers
        ]
        best = choose(stage1).config
        print(f"  stage 1 picks {best.variant} layer {best.layer}", flush=True)
        # Stage 2: at that layer, with MiniLM and / or the third set; MiniLM alone as control.
        for with_minilm, with_more in ((False, True), (True, False), (True, True)):
            run(Config(best.variant, best.layer, with_minilm, with_more))
        for with_more in (False, True):
            run(Config("-", 0, False, with_more))
        chosen = choose(trained)
        print(f"\nchosen on the development set: {chosen.config.name}")

        shipped = meaning_check.load_head()
        shipped_probs = lambda texts: shipped.probabilities(minilm(texts))  # noqa: E731
        texts = [e.text for e in evaluation]
        print("\n== evaluation set, scored once for the chosen configuration ==")
        chosen_scores = unsuitable(chosen.head, chosen.probs(texts)).tolist()
        shipped_scores = unsuitable(shipped, shipped_probs(texts)).tolist()
        report_eval(f"CHOSEN: {chosen.config.name}, meaning alone", evaluation, chosen_scores,
                    chosen.head.sentence_threshold)  # fmt: skip
        report_eval("SHIPPED head, meaning alone", evaluation, shipped_scores,
                    shipped.sentence_threshold)  # fmt: skip
        with UsingHead(chosen.head, chosen.probs):
            gate = [not check_text(e.text).ok for e in evaluation]
        print(f"\nCHOSEN: {chosen.config.name}, the gate (words + meaning)")
        print(evaluate(evaluation, gate, chosen_scores).report())
        gate = [not check_text(e.text).ok for e in evaluation]
        print("\nSHIPPED head, the gate (words + meaning)")
        print(evaluate(evaluation, gate, shipped_scores).report())
        print("\nchosen head's misses and false alarms:")
        figures = evaluate(evaluation, [s >= chosen.head.sentence_threshold
                                        for s in chosen_scores], chosen_scores)  # fmt: skip
        for text, label, value in figures.misses:
            print(f"  miss  {value:.3f} {label:24s} {text}")
        for text, value in figures.false_alarms:
            print(f"  alarm {value:.3f} {text}")

        print(
            "\n== DIAGNOSTIC ONLY (not used to choose; choosing among these now would not be "
            "clean): evaluation set, every configuration at its development threshold =="
        )
        for result in trained:
            scores = unsuitable(result.head, result.probs(texts)).tolist()
            f = evaluate(evaluation, [s >= result.head.sentence_threshold for s in scores], scores)
            print(
                f"{result.config.name:44s} {f.tp:4d}/{f.fn:3d} {f.fp:3d}/{f.tn:3d}  recall "
                f"{f.recall:6.1%}  f.a. {f.false_alarm_rate:5.1%}  "
                f"AUC {auc(evaluation, scores):.3f}"
            )

        if args.no_catalogue:
            return 0
        print("\n== stories ==")
        records = [json.loads(line) for line in CATALOGUE.read_text("utf-8").splitlines() if line]
        catalogue = [(r["title"], r["text"]) for r in records]
        pieces = story_pieces(catalogue)
        split = catalogue_split(0)
        read = read_catalogue()
        held_unsafe, held_kept = sorted(split.held_unsafe), sorted(split.held_kept)
        held_pieces = story_pieces([read[k] for k in (*held_unsafe, *held_kept)])
        every = [s for sent, ctx in (*pieces, *held_pieces) for s in (*sent, *ctx.values())]
        minilm(list(dict.fromkeys(every)))
        if chosen.config.layer:
            main = lm[chosen.config.variant]
            layer = chosen.config.layer
            story_lm = main.shallow(layer, args.cache_dir / f"lm_{main.variant}_L{layer}.npz")
            story_lm.extract([t for t in dict.fromkeys(every) if not main.has(t, layer)], "story")
            main.extra[layer] = {t: v[0] for t, v in story_lm.vectors.items()}
            lm[f"{main.variant} up to layer {layer}"] = story_lm
        for label, head, probs_of in (
            (f"CHOSEN: {chosen.config.name}", chosen.head, chosen.probs),
            ("SHIPPED head", shipped, shipped_probs),
        ):
            flags = meaning_flags(pieces, probs_of, head)
            hit = [i for i, f in enumerate(flags) if f]
            print(
                f"\n{label}: starter catalogue stories the meaning check flags: "
                f"{len(hit)}/{len(catalogue)} ({len(hit) / len(catalogue):.1%})"
            )
            for i in hit[: args.show]:
                s, value = max(flags[i], key=lambda p: p[1])
                print(f"    {catalogue[i][0]!r}: {value:.2f} {s[:90]!r}")
            held = meaning_flags(held_pieces, probs_of, head)
            unsafe = sum(bool(f) for f in held[: len(held_unsafe)])
            kept = sum(bool(f) for f in held[len(held_unsafe) :])
            print(
                f"  held-out, meaning alone: reader-unsafe {unsafe}/{len(held_unsafe)}, "
                f"reader-kept {kept}/{len(held_kept)} ({kept / len(held_kept):.1%})"
            )
            with UsingHead(head, probs_of):
                verdicts = check_stories([read[k] for k in (*held_unsafe, *held_kept)])
            unsafe = sum(not v.ok for v in verdicts[: len(held_unsafe)])
            kept = sum(not v.ok for v in verdicts[len(held_unsafe) :])
            print(
                f"  held-out, the whole gate: reader-unsafe {unsafe}/{len(held_unsafe)}, "
                f"reader-kept {kept}/{len(held_kept)} ({kept / len(held_kept):.1%})"
            )
        for source in lm.values():
            if source.extracted:
                print(
                    f"\nextraction [{source.variant}, {source.depth or 30} layers]: "
                    f"{source.extracted} sentences in "
                    f"{source.seconds:.0f} s, {source.extracted / source.seconds:.1f} sentences/s "
                    f"(torch threads {torch.get_num_threads()})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

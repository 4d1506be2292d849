"""The reader model: can a small learned model say which judge-approved stories a parent keeps?

    # features (cached; the LM scoring is ~1.2 s a story on one free core, resumable)
    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_reader_model.py
    # --no-lm / --no-embeddings: skip those feature families; --rebuild: recompute the cache
    # --write: retrain on every read story and write generator/storyteller/reader_model.json

Data: every story a parent reader has read. Session 5: the 1,042 stories of
``db/data/starter_catalogue.jsonl`` at commit d904156 with their verdicts in
``bench/catalogue_read/session5_verdicts.json`` (``C0123`` is line 123). Session 7: the 779
stories of run 7 in ``bench/catalogue_read/session7_read.jsonl`` (other readers, a later judge,
temperature 0.5 and 0.7). Targets: ``keep`` (verdict keep) and ``coherent`` (coherence >= 1).

Features, all computable at generation time (``generator/storyteller/reader_model.py``):
text statistics and the judge's soft measures; the storyteller's per-token log-probabilities of
the reply given its chat request (CTranslate2 int8 ``score_batch``, the prepared model in
``--model``); and all-MiniLM-L6-v2 sentence embeddings (the pinned base encoder, not the
safety head's tuned layers, which were trained on session-5 reads), averaged over the story,
plus how alike neighbouring sentences are (``cohesion``). The embeddings enter as the first 16
principal components of the training set.

Models: L2 logistic regression (numpy, Newton), the penalty chosen by 5-fold CV inside the
training data. Tests: 5-fold CV by story on each session and on both pooled, and the temporal
test - train on session 5, test on session 7 (new readers, a new run): the honest one. The
practical table: had the generator kept only the top 30/50/70% of the judge-approved
session-7 stories by the model's score, what share would readers have kept, and what share of
all reader-kept stories would have been lost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.storyteller.reader_model import (
    MODEL_PATH,
    ReaderModel,
    embedding_features,
    fit_logistic,
    logprob_features,
    text_features,
)

ROOT = Path(__file__).resolve().parents[1]
SESSION5_AT = "d904156:db/data/starter_catalogue.jsonl"
SESSION5_VERDICTS = ROOT / "bench/catalogue_read/session5_verdicts.json"
SESSION7 = ROOT / "bench/catalogue_read/session7_read.jsonl"
DEFAULT_MODEL = Path.home() / ".local/share/bedtime-stories/models/storyteller"
CACHE = Path("/work/tmp/reader_features.npz")
LM_CACHE = Path("/work/tmp/reader_lm_scores.jsonl")
EMBED_CACHE = Path("/work/tmp/reader_embeddings.npz")
L2_GRID = (0.3, 3.0, 30.0, 300.0)
PCA_DIMS = 16
TOP_SHARES = (0.3, 0.5, 0.7)


def read_stories() -> list[dict]:
    """Every read story: id, session, keywords, title, text, keep, coherence, temperature."""
    lines = subprocess.run(
        ["git", "show", SESSION5_AT], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    catalogue = [json.loads(line) for line in lines if line.strip()]
    verdicts = json.loads(SESSION5_VERDICTS.read_text("utf-8"))
    if len(catalogue) != len(verdicts) or set(verdicts) != {
        f"C{i:04d}" for i in range(len(catalogue))
    }:
        raise SystemExit("session-5 verdicts do not match the catalogue at d904156 line for line")
    stories = [
        {
            "id": f"s5:C{i:04d}",
            "session": 5,
            "temperature": 0.7,
            "keywords": r["keywords"],
            "title": r["title"],
            "text": r["text"],
            "keep": int(verdicts[f"C{i:04d}"]["verdict"] == "keep"),
            "coherence": int(verdicts[f"C{i:04d}"]["coherence"]),
        }
        for i, r in enumerate(catalogue)
    ]
    for line in SESSION7.read_text("utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            stories.append(
                {
                    "id": f"s7:{r['id']}",
                    "session": 7,
                    "temperature": r["temperature"],
                    "keywords": r["keywords"],
                    "title": r["title"],
                    "text": r["text"],
                    "keep": int(r["verdict"] == "keep"),
                    "coherence": int(r["coherence"]),
                }
            )
    return stories


def lm_scores(
    stories: list[dict], model_dir: Path, threads: int, score: bool = True
) -> dict[str, dict]:
    """Reply tokens and log-probabilities per story id, from ``LM_CACHE`` or scored now."""
    done: dict[str, dict] = {}
    if LM_CACHE.exists():
        for line in LM_CACHE.read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["id"]] = row
    todo = [s for s in stories if s["id"] not in done]
    if not todo or not score:
        return done
    import ctranslate2
    from transformers import AutoTokenizer

    from generator.storyteller.prompts import chat_messages, format_reply
    from generator.storyteller.reader_model import score_replies

    tokenizer = AutoTokenizer.from_pretrained(model_dir / "hf")
    generator = ctranslate2.Generator(
        str(model_dir / "ct2"), device="cpu", compute_type="int8", intra_threads=threads
    )
    started = time.monotonic()
    LM_CACHE.parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), 8):
        chunk = todo[start : start + 8]
        prompts = []
        for s in chunk:
            ids = tokenizer.apply_chat_template(
                chat_messages(s["keywords"], "medium"), add_generation_prompt=True
            )
            ids = ids if isinstance(ids, list) else ids["input_ids"]
            prompts.append(tokenizer.convert_ids_to_tokens(ids))
        replies = [format_reply(s["title"], s["text"]) for s in chunk]
        with LM_CACHE.open("a", encoding="utf-8") as handle:
            for s, (tokens, lp) in zip(
                chunk, score_replies(generator, tokenizer, prompts, replies), strict=True
            ):
                row = {"id": s["id"], "tokens": tokens, "logprobs": [round(x, 4) for x in lp]}
                done[s["id"]] = row
                handle.write(json.dumps(row) + "\n")
        n = start + len(chunk)
        print(f"  scored {n}/{len(todo)} in {time.monotonic() - started:.0f} s", flush=True)
    return done


def embeddings(stories: list[dict]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mean sentence embedding, cohesion features, their names) per story, cached."""
    ids = [s["id"] for s in stories]
    if EMBED_CACHE.exists():
        data = np.load(EMBED_CACHE)
        index = {k: i for i, k in enumerate(data["ids"].tolist())}
        if all(k in index for k in ids):
            rows = [index[k] for k in ids]
            return data["mean"][rows], data["cohesion"][rows], data["cohesion_names"].tolist()
    from safety.meaning import Embedder, model_dir, split_sentences

    embed = Embedder(model_dir(), tuned=None)
    means = np.zeros((len(stories), 768), np.float32)
    rows = []
    for i, s in enumerate(stories):
        means[i], cohesion = embedding_features(embed(split_sentences(s["text"])))
        rows.append(cohesion)
    names = list(rows[0])
    cohesion = np.array([[r[n] for n in names] for r in rows], np.float32)
    np.savez_compressed(
        EMBED_CACHE, ids=np.array(ids), mean=means, cohesion=cohesion, cohesion_names=names
    )
    return means, cohesion, names


def build_features(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The feature cache (``--cache``): built once, reused until ``--rebuild``."""
    if args.cache.exists() and not args.rebuild:
        data = dict(np.load(args.cache, allow_pickle=False))
        print(f"features from {args.cache} ({len(data['ids'])} stories)")
        return data
    stories = read_stories()
    started = time.monotonic()
    text_rows = [text_features(s["title"], s["text"], s["keywords"]) for s in stories]
    text_names = list(text_rows[0])
    print(f"text features: {time.monotonic() - started:.0f} s")
    out: dict[str, np.ndarray] = {
        "ids": np.array([s["id"] for s in stories]),
        "session": np.array([s["session"] for s in stories]),
        "temperature": np.array([s["temperature"] for s in stories]),
        "keep": np.array([s["keep"] for s in stories]),
        "coherence": np.array([s["coherence"] for s in stories]),
        "keyword_set": np.array(["|".join(sorted(s["keywords"])) for s in stories]),
        "text": np.array([[r[n] for n in text_names] for r in text_rows]),
        "text_names": np.array(text_names),
    }
    if not args.no_lm:
        scored = lm_scores(stories, args.model, args.threads, score=not args.lm_cached_only)
        names = list(logprob_features(["a", "."], [-1.0, -1.0]))
        rows = [
            logprob_features(scored[s["id"]]["tokens"], scored[s["id"]]["logprobs"])
            if s["id"] in scored
            else dict.fromkeys(names, float("nan"))
            for s in stories
        ]
        print(f"log-probabilities for {len(scored)} of {len(stories)} stories")
        out["lm"] = np.array([[r[n] for n in names] for r in rows])
        out["lm_names"] = np.array(names)
    if not args.no_embeddings:
        means, cohesion, names = embeddings(stories)
        out["embedding"], out["cohesion"], out["cohesion_names"] = means, cohesion, np.array(names)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.cache, **out)
    print(f"features cached in {args.cache}")
    return out


# --- measures ---------------------------------------------------------------------------------


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged)."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = np.asarray(score)[order]
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    positives, negatives = y.sum(), (~y).sum()
    if not positives or not negatives:
        return float("nan")
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def within_set_accuracy(y: np.ndarray, score: np.ndarray, groups: list[tuple[str, ...]]) -> float:
    """Of the pairs of stories about the same keywords that readers split (one kept, one
    removed), the share the score orders right (ties count half): best-of-N's own question."""
    right = total = 0.0
    by_group: dict[tuple[str, ...], list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    for members in by_group.values():
        kept = [i for i in members if y[i]]
        removed = [i for i in members if not y[i]]
        for k in kept:
            for r in removed:
                total += 1
                right += 1.0 if score[k] > score[r] else 0.5 if score[k] == score[r] else 0.0
    return right / total if total else float("nan")


def top_share(y: np.ndarray, score: np.ndarray, share: float) -> tuple[float, float]:
    """(reader keep rate among the top ``share`` by score, share of all kept stories lost)."""
    n = max(1, round(share * len(y)))
    top = np.argsort(-score, kind="mergesort")[:n]
    kept = y[top].sum()
    return float(kept / n), float(1 - kept / max(1, y.sum()))


# --- models -----------------------------------------------------------------------------------


class Design:
    """Which feature families a model uses; fitted standardisation and PCA live here."""

    def __init__(self, data: dict[str, np.ndarray], families: tuple[str, ...]) -> None:
        self.data, self.families = data, families
        self._pca: dict[bytes, np.ndarray] = {}

    def names(self) -> list[str]:
        out: list[str] = []
        for family in self.families:
            if family == "embedding":
                out += [f"embedding_pc{i + 1}" for i in range(PCA_DIMS)]
            else:
                out += [str(n) for n in self.data[f"{family}_names"]]
        return out

    def matrix(
        self, train: np.ndarray, rows: np.ndarray, pca_train: np.ndarray | None = None
    ) -> np.ndarray:
        """Features of ``rows``, standardised on ``train``; the embedding projected on the
        principal components of ``pca_train`` (default ``train``; the inner folds of a
        penalty search reuse the outer training set's, which holds no test story)."""
        parts = []
        for family in self.families:
            if family == "embedding":
                pca_rows = train if pca_train is None else pca_train
                key = pca_rows.tobytes()
                if key not in self._pca:
                    e = self.data["embedding"].astype(float)
                    centre = e[pca_rows].mean(0)
                    _, _, vt = np.linalg.svd(e[pca_rows] - centre, full_matrices=False)
                    self._pca = {key: (e - centre) @ vt[:PCA_DIMS].T}
                parts.append(self._pca[key])
            else:
                parts.append(self.data[family].astype(float))
        x = np.hstack(parts)
        mean, scale = x[train].mean(0), x[train].std(0)
        scale[scale < 1e-9] = 1.0
        return ((x - mean) / scale)[rows]


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i::k] for i in range(k)]


def fit_predict(
    design: Design, y: np.ndarray, train: np.ndarray, test: np.ndarray, l2: float | None = None
) -> tuple[np.ndarray, float]:
    """Scores for ``test`` from a model fitted on ``train`` (penalty by inner 5-fold CV)."""
    if l2 is None:
        inner = np.zeros((len(L2_GRID), len(train)))
        for fold in folds(len(train), 5, 1):
            rest = np.setdiff1d(np.arange(len(train)), fold)
            x = design.matrix(train[rest], np.concatenate([train[rest], train[fold]]), train)
            for i, candidate in enumerate(L2_GRID):
                w, b = fit_logistic(x[: len(rest)], y[train[rest]], candidate)
                inner[i, fold] = x[len(rest) :] @ w + b
        l2 = max(zip((auc(y[train], s) for s in inner), L2_GRID, strict=True))[1]
    x = design.matrix(train, np.concatenate([train, test]))
    w, b = fit_logistic(x[: len(train)], y[train], l2)
    return x[len(train) :] @ w + b, l2


def cross_validated(design: Design, y: np.ndarray, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """Out-of-fold scores for ``rows`` (5 folds by story)."""
    out = np.zeros(len(rows))
    for fold in folds(len(rows), 5, seed):
        rest = np.setdiff1d(np.arange(len(rows)), fold)
        out[fold], _ = fit_predict(design, y, rows[rest], rows[fold])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="prepared storyteller")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--rebuild", action="store_true", help="recompute the feature cache")
    parser.add_argument("--no-lm", action="store_true", help="no storyteller log-probabilities")
    parser.add_argument("--no-embeddings", action="store_true", help="no MiniLM features")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--lm-cached-only",
        action="store_true",
        help="use the stories already scored (the others sit out of the log-probability models)",
    )
    parser.add_argument(
        "--write", action="store_true", help=f"retrain on every read story and write {MODEL_PATH}"
    )
    parser.add_argument(
        "--ship-families", default="text,lm", help="feature families of the written model"
    )
    args = parser.parse_args()
    data = build_features(args)
    if "lm" in data:
        usable = np.isfinite(data["lm"]).all(1)
        if not usable.all():
            print(f"only the {usable.sum()} stories with log-probabilities take part below")
            data = {k: v[usable] if not k.endswith("_names") else v for k, v in data.items()}
    n = len(data["ids"])
    session = data["session"]
    s5, s7 = np.flatnonzero(session == 5), np.flatnonzero(session == 7)
    s7_cool = np.flatnonzero((session == 7) & (data["temperature"] == 0.5))
    targets = {"keep": data["keep"], "coherent": (data["coherence"] >= 1).astype(int)}
    print(f"\n{n} read stories: session 5 {len(s5)}, session 7 {len(s7)} ({len(s7_cool)} at 0.5)")
    for name, y in targets.items():
        print(
            f"  base rate {name}: session 5 {y[s5].mean():.3f}, session 7 {y[s7].mean():.3f}, "
            f"session 7 at 0.5 {y[s7_cool].mean():.3f}"
        )
    available = ["text"] + [f for f in ("lm", "cohesion", "embedding") if f in data]
    sets: list[tuple[str, ...]] = [("text",)]
    if "lm" in data:
        sets += [("lm",), ("text", "lm")]
    if "cohesion" in data:
        sets += [("text", "cohesion")]
    if "embedding" in data:
        sets += [("embedding",), ("text", "embedding")]
    if len(available) > 1:
        sets.append(tuple(available))
    if "lm" in data and "cohesion" in data:
        sets.append(("text", "lm", "cohesion"))
    sets = list(dict.fromkeys(sets))

    print("\nAUC (5-fold CV by story within a session or pooled; temporal: train 5, test 7)")
    header = f"{'target':9} {'features':30} {'cv s5':>6} {'cv s7':>6} {'cv all':>6} "
    print(header + f"{'5->7':>6} {'5->7@0.5':>8} {'l2':>5}")
    temporal: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    for target, y in targets.items():
        for families in sets:
            design = Design(data, families)
            cv = [auc(y[rows], cross_validated(design, y, rows)) for rows in (s5, s7, np.arange(n))]
            scores, l2 = fit_predict(design, y, s5, s7)
            temporal[target, families] = scores
            cool = np.isin(s7, s7_cool)
            print(
                f"{target:9} {'+'.join(families):30} {cv[0]:6.3f} {cv[1]:6.3f} {cv[2]:6.3f} "
                f"{auc(y[s7], scores):6.3f} {auc(y[s7][cool], scores[cool]):8.3f} {l2:5g}"
            )

    y7 = data["keep"][s7]
    groups = [(str(g),) for g in data["keyword_set"][s7]]
    baselines: dict[str, np.ndarray] = {}
    if "lm" in data:
        lm = dict(zip([str(v) for v in data["lm_names"]], data["lm"].T, strict=True))
        text = dict(zip([str(v) for v in data["text_names"]], data["text"].T, strict=True))
        # best-of-N's score today (quality.judge), keyword mentions taken as saturated
        baselines["judge score (mean logprob+)"] = (
            lm["lp_mean"] + 0.15 + 0.5 * text["distinct_2"] - 0.3 * text["wound_up_ending"]
        )[s7]
    print("\nWithin a keyword set (session 7; pairs of same-keyword stories readers split):")
    print("share of pairs ordered right by the score (0.5 = chance)")
    for label, scores in [*baselines.items(), *(("+".join(f), temporal["keep", f]) for f in sets)]:
        print(
            f"  {label:30} {within_set_accuracy(y7, scores, groups):.3f}"
            f"   (AUC over all: {auc(y7, scores):.3f})"
        )
    print(f"\nTop share of the {len(s7)} session-7 stories by the session-5 model's keep score")
    print(f"(reader keep rate among all of them: {y7.mean():.3f})")
    print(
        f"{'features':30} "
        + " ".join(f"{'top ' + str(int(s * 100)) + '%':>18}" for s in TOP_SHARES)
    )
    print(f"{'':30} " + " ".join(f"{'kept / lost':>18}" for _ in TOP_SHARES))
    rows_by_label = [*baselines.items(), *(("+".join(f), temporal["keep", f]) for f in sets)]
    for label, scores in rows_by_label:
        cells = [top_share(y7, scores, s) for s in TOP_SHARES]
        print(f"{label:30} " + " ".join(f"{k:8.3f} / {lost:7.3f}" for k, lost in cells))
    # The same on the 0.5 stories only (the default temperature now).
    cool = np.isin(s7, s7_cool)
    print(f"\nsession 7 at temperature 0.5 only ({cool.sum()}, keep rate {y7[cool].mean():.3f}):")
    for label, scores in rows_by_label:
        cells = [top_share(y7[cool], scores[cool], s) for s in TOP_SHARES]
        print(f"{label:30} " + " ".join(f"{k:8.3f} / {lost:7.3f}" for k, lost in cells))

    print("\nSingle features: AUC for keep (session 5 / session 7), > 0.5 = higher means kept")
    single = []
    for family in [f for f in available if f != "embedding"]:
        for j, name in enumerate(data[f"{family}_names"]):
            values = data[family][:, j].astype(float)
            single.append(
                (str(name), auc(data["keep"][s5], values[s5]), auc(data["keep"][s7], values[s7]))
            )
    single.sort(key=lambda r: -abs(r[1] - 0.5) - abs(r[2] - 0.5))
    for name, a5, a7 in single[:20]:
        print(f"  {name:32} {a5:6.3f} {a7:6.3f}")

    families = tuple(f for f in args.ship_families.split(",") if f in data)
    design = Design(data, families)
    _, l2 = fit_predict(design, data["keep"], np.arange(n), np.arange(0))
    x = design.matrix(np.arange(n), np.arange(n))
    w, _ = fit_logistic(x, data["keep"], l2)
    print(f"\nStandardised weights, keep, {'+'.join(families)}, all {n} stories (l2 {l2:g}):")
    for name, weight in sorted(zip(design.names(), w, strict=True), key=lambda r: -abs(r[1]))[:15]:
        print(f"  {name:32} {weight:+.3f}")

    if args.write:
        write_model(data, families, l2, temporal, s7)
    return 0


def write_model(
    data: dict[str, np.ndarray],
    families: tuple[str, ...],
    l2: float,
    temporal: dict[tuple[str, tuple[str, ...]], np.ndarray],
    s7: np.ndarray,
) -> None:
    """Fit on every read story and write ``MODEL_PATH`` with its training record. The
    embedding's principal components are folded into one weight vector on the raw mean
    embedding, so the file stays small."""
    everyone = np.arange(len(data["ids"]))
    design = Design(data, families)
    x = design.matrix(everyone, everyone)
    weights, fitted_bias = fit_logistic(x, data["keep"], l2)
    bias = fitted_bias
    names = [str(n) for f in families if f != "embedding" for n in data[f"{f}_names"]]
    plain = np.hstack([data[f].astype(float) for f in families if f != "embedding"])
    mean, scale = plain.mean(0), plain.std(0)
    scale[scale < 1e-9] = 1.0
    named = dict(zip(design.names(), weights, strict=True))
    embedding_weights = None
    if "embedding" in families:
        e = data["embedding"].astype(float)
        centre = e.mean(0)
        _, _, vt = np.linalg.svd(e - centre, full_matrices=False)
        components = (e - centre) @ vt[:PCA_DIMS].T
        c_mean, c_scale = components.mean(0), components.std(0)
        w = np.array([named[f"embedding_pc{i + 1}"] for i in range(PCA_DIMS)]) / c_scale
        embedding_weights = vt[:PCA_DIMS].T @ w
        bias -= float(w @ (vt[:PCA_DIMS] @ centre + c_mean))
    y7 = data["keep"][s7]
    scores = temporal.get(("keep", families))
    measured = {}
    if scores is not None:
        measured = {
            "temporal_auc_keep": round(auc(y7, scores), 3),
            "temporal_auc_coherent": round(
                auc((data["coherence"][s7] >= 1).astype(int), temporal["coherent", families]), 3
            ),
            "within_keyword_set_pairs_right": round(
                within_set_accuracy(y7, scores, [(str(g),) for g in data["keyword_set"][s7]]), 3
            ),
            "session7_keep_rate": round(float(y7.mean()), 3),
            "session7_top_share": {
                f"{int(share * 100)}%": {"kept": round(kept, 3), "lost": round(lost, 3)}
                for share in TOP_SHARES
                for kept, lost in [top_share(y7, scores, share)]
            },
        }
    record = {
        "trained": time.strftime("%Y-%m-%d"),
        "data": "parent reads: session-5 catalogue (1,042 stories, d904156, "
        "session5_verdicts.json) + run 7 (779, session7_read.jsonl)",
        "stories": len(everyone),
        "keep_rate": round(float(data["keep"].mean()), 3),
        "features": "+".join(families),
        "embedding": "all-MiniLM-L6-v2 base (safety.meaning, no tuned layers), sentence mean",
        "l2": l2,
        "target": "reader verdict keep",
        "measured_train_session5_test_session7": measured,
        "command": "bench/bench_reader_model.py --write --ship-families " + ",".join(families),
    }
    model = ReaderModel(
        names,
        mean,
        scale,
        np.array([named[n] for n in names]),
        bias,
        record,
        embedding_weights,
    )
    rows = [dict(zip(names, row, strict=True)) for row in plain]
    folded = model.scores(rows, data["embedding"] if "embedding" in families else None)
    direct = 1 / (1 + np.exp(-(x @ weights + fitted_bias)))
    if not np.allclose(folded, direct, atol=1e-6):
        raise SystemExit("the folded model does not reproduce the fitted one")
    model.save(MODEL_PATH)
    print(f"wrote {MODEL_PATH} ({MODEL_PATH.stat().st_size} bytes)")


if __name__ == "__main__":
    raise SystemExit(main())

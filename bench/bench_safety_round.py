"""One training round of the meaning check, run under a rule written down before it.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_safety_round.py \\
        --corpus ../shared/corpus/train --cache runs/embeddings.npz --out runs/safety_round

The rule is ``bench/safety_rounds/session9_rule.md``: three arms trained the shipped way
(A0 today's data, A1 + ``train_more.jsonl``, A2 + ``train_more.jsonl`` + ``train_voices.jsonl``),
thresholds by the shipped rule on the development set (which now includes ``dev_more.jsonl``),
the arm chosen by development recall (ties: development AUC) *before* the evaluation set is
read. Then the chosen arm is scored on the evaluation set (the meaning check alone and the
gate) and run over the starter catalogue (the whole gate); the other arms are printed after
it, as diagnostics. Each arm's head is written to ``--out`` (``<arm>.json``); the figures to
``--out/results.json`` and the chosen arm's flagged catalogue stories to
``--out/flagged_stories.jsonl`` for reading.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "db" / "data" / "starter_catalogue.jsonl"


def auc(positive: list[float], negative: list[float]) -> float:
    """Probability that a random unsuitable sentence outscores a random suitable one."""
    if not positive or not negative:
        return float("nan")
    ordered = sorted([(s, 1) for s in positive] + [(s, 0) for s in negative])
    rank_sum, i = 0.0, 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2
        rank_sum += mean_rank * sum(label for _, label in ordered[i:j])
        i = j
    n_pos = len(positive)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * len(negative))


def split_scores(examples, scores) -> tuple[list[float], list[float]]:
    from safety.meaning import SUITABLE

    unsuitable = [s for e, s in zip(examples, scores, strict=True) if e.label != SUITABLE]
    suitable = [s for e, s in zip(examples, scores, strict=True) if e.label == SUITABLE]
    return unsuitable, suitable


def use_head(path: Path) -> None:
    from safety import meaning

    meaning.HEAD_PATH = path.resolve()
    meaning.load_head.cache_clear()


def evaluate_arm(name: str, head_path: Path, catalogue: list[dict], out: Path | None) -> dict:
    """The evaluation set (meaning alone, the gate) and the catalogue through the whole gate."""
    from safety.gate import check_stories, check_text
    from safety.meaning import load_head
    from safety.training import EVAL_PATH, evaluate, evaluate_head, read_jsonl, score

    use_head(head_path)
    head = load_head()
    examples = read_jsonl(EVAL_PATH)
    alone = evaluate_head(head, examples)
    scores = score(examples, head)
    gate = evaluate(examples, [not check_text(e.text).ok for e in examples], scores)
    print(
        f"\n=== {name}: evaluation set, meaning check alone (threshold {head.sentence_threshold})"
    )
    print(alone.report())
    print(f"=== {name}: evaluation set, the gate")
    print(gate.report())
    verdicts = check_stories([(s["title"], s["text"]) for s in catalogue])
    flagged = [(s, v) for s, v in zip(catalogue, verdicts, strict=True) if not v.ok]
    print(f"=== {name}: starter catalogue, the whole gate flags {len(flagged)}/{len(catalogue)}")
    for story, verdict in flagged[:20]:
        print(f"  {story['title']!r}: {verdict.line()}")
    if out is not None:
        with out.open("w", encoding="utf-8") as handle:
            for story, verdict in flagged:
                row = {"title": story["title"], "text": story["text"], "verdict": verdict.line()}
                handle.write(json.dumps(row) + "\n")
    unsuitable, suitable = split_scores(examples, scores)
    return {
        "threshold": head.sentence_threshold,
        "eval_meaning": [alone.tp, alone.fn, alone.fp, alone.tn],
        "eval_meaning_recall": round(alone.recall, 4),
        "eval_meaning_false_alarms": round(alone.false_alarm_rate, 4),
        "eval_auc": round(auc(unsuitable, suitable), 4),
        "eval_gate": [gate.tp, gate.fn, gate.fp, gate.tn],
        "eval_per_category_gate": gate.per_category,
        "catalogue_flagged": len(flagged),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="shared/corpus/train")
    parser.add_argument("--cache", type=Path, help="embedding cache (npz), read and written")
    parser.add_argument("--out", type=Path, default=Path("runs/safety_round"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from safety.training import (
        HARD_PATH,
        MORE_PATH,
        VOICES_PATH,
        all_training_examples,
        development_examples,
        embedding_cache,
        fit,
        score,
    )

    arms = {
        "A0": (HARD_PATH,),
        "A1": (HARD_PATH, MORE_PATH),
        "A2": (HARD_PATH, MORE_PATH, VOICES_PATH),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    with embedding_cache(args.cache):
        for name, hand_sets in arms.items():
            head, meta = fit(args.corpus, args.seed, hand_sets=hand_sets)
            path = args.out / f"{name}.json"
            path.write_text(json.dumps(head.to_json()) + "\n", encoding="utf-8")
            training = all_training_examples(args.corpus, args.seed, hand_sets=hand_sets)
            dev = development_examples(args.corpus, training)
            unsuitable, suitable = split_scores(dev, score(dev, head))
            results[name] = {
                "training_sentences": len(training),
                "dev_sentences": len(dev),
                "dev": meta["dev"],
                "dev_auc": round(auc(unsuitable, suitable), 4),
                "threshold": head.sentence_threshold,
            }
            print(f"{name}: development {results[name]}", flush=True)
        chosen = max(results, key=lambda a: (results[a]["dev"]["recall"], results[a]["dev_auc"]))
        print(f"\nchosen on the development set: {chosen}", flush=True)

        catalogue = [json.loads(line) for line in CATALOGUE.read_text("utf-8").splitlines() if line]
        order = [chosen] + [a for a in arms if a != chosen]
        for name in order:
            flagged_out = args.out / "flagged_stories.jsonl" if name == chosen else None
            results[name].update(
                evaluate_arm(name, args.out / f"{name}.json", catalogue, flagged_out)
            )
    summary = {"chosen": chosen, "arms": results}
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

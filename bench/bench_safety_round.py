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

from bench_meaning_heldout import use_head  # noqa: E402

from safety.training import auc  # noqa: E402

CATALOGUE = ROOT / "db" / "data" / "starter_catalogue.jsonl"
#: The rounds' development set: the shipped one and session 9's dev_more.jsonl.
DEV_SETS = (ROOT / "safety" / "data" / "dev_set.jsonl", ROOT / "safety" / "data" / "dev_more.jsonl")


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
    return {
        "threshold": head.sentence_threshold,
        "eval_meaning": [alone.tp, alone.fn, alone.fp, alone.tn],
        "eval_meaning_recall": round(alone.recall, 4),
        "eval_meaning_false_alarms": round(alone.false_alarm_rate, 4),
        "eval_auc": round(auc(examples, scores), 4),
        "eval_gate": [gate.tp, gate.fn, gate.fp, gate.tn],
        "eval_per_category_gate": gate.per_category,
        "catalogue_flagged": len(flagged),
    }


READS = (
    ROOT / "bench" / "catalogue_read" / "session7_read.jsonl",
    ROOT / "bench" / "catalogue_read" / "session8_read.jsonl",
)
#: Round 9b: at most this share of the development half's model-prose stories may hold a
#: sentence at or above the threshold.
PROSE_STORY_RATE = 0.01


def prose_halves(seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of the stories parent readers removed only as nonsense or broken text (never
    unsafe, never an unsettled ending), none in the starter catalogue: (training, development)
    halves, split by story."""
    import random

    from safety.meaning import split_sentences

    shipped = {json.loads(line)["text"] for line in CATALOGUE.read_text("utf-8").splitlines()}
    stories = []
    for path in READS:
        for line in path.read_text("utf-8").splitlines():
            read = json.loads(line)
            categories = set(read.get("categories") or ())
            if read["verdict"] != "remove" or not categories <= {"nonsense", "broken"}:
                continue
            if read["text"] in shipped:
                continue
            stories.append([s for s in split_sentences(read["text"]) if s.strip()])
    random.Random(seed).shuffle(stories)
    half = len(stories) // 2
    return stories[:half], stories[half:]


def with_prose_threshold(head, dev_stories: list[list[str]], rate: float = PROSE_STORY_RATE):
    """``head`` with its sentence threshold raised, if need be, until at most ``rate`` of the
    development prose stories hold a sentence at or above it (ending threshold kept below)."""
    from dataclasses import replace

    from safety.meaning import judge_sentences
    from safety.training import _round_up, threshold_for

    every = list(dict.fromkeys(s for story in dev_stories for s in story))
    scores = {j.sentence: j.unsuitable for j in judge_sentences(every, head)}
    worst = [max(scores[s] for s in story) for story in dev_stories if story]
    prose = _round_up(threshold_for(worst, rate))
    sentence = max(head.sentence_threshold, prose)
    meta = dict(head.meta, prose_threshold=prose, prose_story_rate=rate)
    return replace(
        head,
        sentence_threshold=sentence,
        ending_threshold=min(head.ending_threshold, sentence),
        meta=meta,
    )


def round_9b(args) -> int:
    """Round 9b (bench/safety_rounds/session9_rule.md): B0 = A2 + the prose threshold, B1 = A2's
    data + the training half of the model prose, same threshold rule; chosen on development."""
    from safety.meaning import SUITABLE, head_from_json
    from safety.training import (
        HARD_DEV_SOURCES,
        HARD_PATH,
        MORE_PATH,
        VOICES_PATH,
        Example,
        all_training_examples,
        development_examples,
        embedding_cache,
        evaluate,
        fit,
        score,
    )

    hand_sets = (HARD_PATH, MORE_PATH, VOICES_PATH)
    train_half, dev_half = prose_halves(args.seed)
    extra = [Example(s, SUITABLE, "model_prose") for story in train_half for s in story]
    print(f"model prose: {len(train_half)} training stories ({len(extra)} sentences), "
          f"{len(dev_half)} development stories", flush=True)  # fmt: skip
    results: dict[str, dict] = {}
    with embedding_cache(args.cache):
        a2 = json.loads((args.out / "A2.json").read_text("utf-8"))
        base = head_from_json(a2, "A2")
        training = all_training_examples(args.corpus, args.seed, hand_sets=hand_sets)
        heads = {"B0": (with_prose_threshold(base, dev_half),
                        development_examples(args.corpus, training, DEV_SETS))}  # fmt: skip
        b1, _ = fit(args.corpus, args.seed, hand_sets=hand_sets, dev_sets=DEV_SETS, extra=extra)
        dev_b1 = development_examples(args.corpus, training + extra, DEV_SETS)
        heads["B1"] = (with_prose_threshold(b1, dev_half), dev_b1)
        for name, (head, dev) in heads.items():
            hand = [e for e in dev if e.source in HARD_DEV_SOURCES]
            scores = score(hand, head)
            found = evaluate(hand, [x >= head.sentence_threshold for x in scores], scores)
            results[name] = {
                "threshold": head.sentence_threshold,
                "prose_threshold": head.meta["prose_threshold"],
                "dev_hand_recall": round(found.recall, 4),
                "dev_hand_false_alarms": round(found.false_alarm_rate, 4),
                "dev_hand_auc": round(auc(hand, scores), 4),
            }
            path = args.out / f"{name}.json"
            path.write_text(json.dumps(head.to_json()) + "\n", encoding="utf-8")
            print(f"{name}: development {results[name]}", flush=True)
        chosen = max(results, key=lambda a: (results[a]["dev_hand_recall"],
                                             results[a]["dev_hand_auc"]))  # fmt: skip
        print(f"\nchosen on the development set: {chosen}", flush=True)
        catalogue = [json.loads(line) for line in CATALOGUE.read_text("utf-8").splitlines() if line]
        for name in [chosen] + [a for a in results if a != chosen]:
            flagged_out = args.out / f"flagged_stories_{name}.jsonl"
            results[name].update(
                evaluate_arm(name, args.out / f"{name}.json", catalogue, flagged_out)
            )
    summary = {"round": "9b", "chosen": chosen, "arms": results}
    (args.out / "results_9b.json").write_text(json.dumps(summary, indent=1) + "\n", "utf-8")
    print(json.dumps(summary, indent=1))
    return 0


def held_out_stories(head_path: Path | None, seed: int = 0) -> dict[str, int]:
    """The whole gate on the held-out halves of the parents' read (bench_meaning_heldout.py):
    reader-unsafe stories caught, reader-kept stories flagged."""
    from safety.gate import check_stories
    from safety.training import catalogue_split, read_catalogue

    use_head(head_path)
    split = catalogue_split(seed)
    stories = read_catalogue()
    held = sorted(split.held)
    verdicts = dict(zip(held, check_stories([stories[k] for k in held]), strict=True))
    return {
        "held_unsafe_caught": sum(not verdicts[k].ok for k in split.held_unsafe),
        "held_unsafe": len(split.held_unsafe),
        "held_kept_flagged": sum(not verdicts[k].ok for k in split.held_kept),
        "held_kept": len(split.held_kept),
    }


def round_9c(args) -> int:
    """Round 9c (bench/safety_rounds/session9_rule.md): A2's head, a flagged story sentence
    read with its neighbours; the shipped head's held-out figures measured in the same run."""
    from safety.gate import CONTEXT_WINDOW
    from safety.meaning import HEAD_PATH
    from safety.training import embedding_cache

    a2 = json.loads((args.out / "A2.json").read_text("utf-8"))
    a2["meta"] = dict(a2.get("meta", {}), **{CONTEXT_WINDOW: True})
    path = args.out / "C0.json"
    path.write_text(json.dumps(a2) + "\n", encoding="utf-8")
    catalogue = [json.loads(line) for line in CATALOGUE.read_text("utf-8").splitlines() if line]
    with embedding_cache(args.cache):
        shipped = HEAD_PATH
        results = {"C0": evaluate_arm("C0", path, catalogue, args.out / "flagged_stories_C0.jsonl")}
        results["C0"].update(held_out_stories(path, args.seed))
        results["shipped"] = held_out_stories(shipped, args.seed)
    summary = {"round": "9c", "arms": results}
    (args.out / "results_9c.json").write_text(json.dumps(summary, indent=1) + "\n", "utf-8")
    print(json.dumps(summary, indent=1))
    return 0


def round_10(args) -> int:
    """Round 10 (bench/safety_rounds/session10_rule.md): the encoder's top two layers tuned
    with the classifier on A2's data; evaluated once, with the calm-neighbour probe."""
    from safety import meaning
    from safety.gate import check_stories
    from safety.training import (
        CALM_NEIGHBOUR_PROBE,
        HARD_PATH,
        MORE_PATH,
        VOICES_PATH,
        all_training_examples,
        development_examples,
        score,
        tune_encoder,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    hand_sets = (HARD_PATH, MORE_PATH, VOICES_PATH)
    training = all_training_examples(args.corpus, args.seed, hand_sets=hand_sets)
    dev = development_examples(args.corpus, training, DEV_SETS)
    print(f"T2: {len(training)} training, {len(dev)} development sentences", flush=True)
    head, meta = tune_encoder(
        training, dev, seed=args.seed, tune_layers=2, max_minutes=args.max_minutes,
        epochs=args.epochs, out_dir=args.out,
    )  # fmt: skip
    data = head.to_json()
    encoder = dict(data["meta"]["encoder"])
    encoder["file"] = str((args.out / encoder["file"]).resolve())  # beside this head, not shipped
    data["meta"]["encoder"] = encoder
    path = args.out / "T2.json"
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")
    use_head(path)  # with its tuned layers: a fresh embedder
    loaded = meaning.load_head()
    results = {
        "training": data["meta"].get("training"),
        "dev": meta.get("dev"),
        "dev_auc": round(auc(dev, score(dev, loaded)), 4),
    }
    print(f"T2 development: {results}", flush=True)
    catalogue = [json.loads(line) for line in CATALOGUE.read_text("utf-8").splitlines() if line]
    results.update(evaluate_arm("T2", path, catalogue, args.out / "flagged_stories.jsonl"))
    probe = check_stories([("A Story", story) for story in CALM_NEIGHBOUR_PROBE])
    results["probe_failed"] = sum(not verdict.ok for verdict in probe)
    print(f"T2: probe stories failed {results['probe_failed']}/{len(probe)}")
    summary = {"round": "10", "arms": {"T2": results}}
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="shared/corpus/train")
    parser.add_argument("--cache", type=Path, help="embedding cache (npz), read and written")
    parser.add_argument("--out", type=Path, default=Path("runs/safety_round"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--round", choices=("9", "9b", "9c", "10"), default="9", help="the rule to run"
    )
    parser.add_argument("--max-minutes", type=float, default=40.0, help="round 10's training")
    parser.add_argument("--epochs", type=float, default=3.0, help="round 10's training")
    args = parser.parse_args()
    if args.round == "10":
        return round_10(args)
    if args.round == "9b":
        return round_9b(args)
    if args.round == "9c":
        return round_9c(args)

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
            head, meta = fit(args.corpus, args.seed, hand_sets=hand_sets, dev_sets=DEV_SETS)
            path = args.out / f"{name}.json"
            path.write_text(json.dumps(head.to_json()) + "\n", encoding="utf-8")
            training = all_training_examples(args.corpus, args.seed, hand_sets=hand_sets)
            dev = development_examples(args.corpus, training, DEV_SETS)
            results[name] = {
                "training_sentences": len(training),
                "dev_sentences": len(dev),
                "dev": meta["dev"],
                "dev_auc": round(auc(dev, score(dev, head)), 4),
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

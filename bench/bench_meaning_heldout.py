"""The meaning check on what it was never trained on: the held-out half of the parents' read.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_meaning_heldout.py \\
        --corpus ../shared/corpus/train --cache runs/embeddings.npz [--head other_head.json]

The parents' read of the session-5 catalogue (``bench/bench_catalogue_misses.py``) is split by
story (``safety.training.catalogue_split``): the training halves of the reader-unsafe and
reader-kept stories may be trained on (``catalogue_examples``), the held-out halves never are,
nor are they used to choose thresholds. For a head (default: the shipped one) this prints

* the evaluation set (``eval_set.jsonl``): the meaning check alone and the whole gate on
  each sentence, as ``bedtime safety eval`` does;
* the held-out stories the whole gate flags (``check_stories``: words, meaning, calm ending):
  reader-unsafe ones (caught) and reader-kept ones (false alarms at story level);
* the held-out ``catalogue_misses.jsonl`` sentences flagged, by the meaning check alone and by
  the gate on the sentence (``check_text``);
* with ``--corpus``, the development set (where thresholds are chosen), as built for training
  with the catalogue's training half (``all_training_examples`` + ``catalogue_examples``).

``--cache`` keeps sentence embeddings on disk, so a second head is measured in seconds (the
first run embeds ~10,000 sentences: about 10 minutes on this busy 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def use_head(path: Path | None) -> None:
    """Make ``path`` the head the gate loads (``None``: the shipped one).

    A head that brings its own tuned encoder layers (or drops them) also gets a fresh embedder
    and embedding cache: sentences embedded by the other encoder would be judged wrongly."""
    from safety import meaning

    encoder_before = meaning.load_head().meta.get("encoder")
    if path is not None:
        meaning.HEAD_PATH = path.resolve()
    meaning.load_head.cache_clear()
    if meaning.load_head().meta.get("encoder") != encoder_before:
        meaning.embedder.cache_clear()
        meaning._CACHE.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--head", type=Path, help="the head to measure (default: the shipped one)")
    parser.add_argument("--corpus", type=Path, help="shared/corpus/train: also the dev figures")
    parser.add_argument("--cache", type=Path, help="embedding cache file (npz), read and written")
    parser.add_argument("--seed", type=int, default=0, help="the split's seed (as trained)")
    parser.add_argument("--show", type=int, default=10, help="flagged kept stories to list")
    args = parser.parse_args()

    from safety.gate import check_stories, check_text
    from safety.meaning import load_head
    from safety.training import (
        EVAL_PATH,
        MISSES_PATH,
        Example,
        all_training_examples,
        catalogue_examples,
        catalogue_split,
        development_examples,
        embedding_cache,
        evaluate,
        evaluate_head,
        read_catalogue,
        read_jsonl,
        score,
    )

    use_head(args.head)
    head = load_head()
    print(f"head {head.version} (sentence threshold {head.sentence_threshold})\n")
    split = catalogue_split(args.seed)
    stories = read_catalogue()
    misses = [json.loads(line) for line in MISSES_PATH.read_text("utf-8").splitlines() if line]
    held_misses = [m for m in misses if m["id"] in split.held_unsafe]

    with embedding_cache(args.cache):
        examples = read_jsonl(EVAL_PATH)
        print("(a) evaluation set, meaning check alone:")
        print(evaluate_head(head, examples).report())
        scores = score(examples, head)
        whole = evaluate(examples, [not check_text(e.text).ok for e in examples], scores)
        print("(a) evaluation set, the gate (words + meaning):")
        print(whole.report())

        held = sorted(split.held)
        verdicts = dict(zip(held, check_stories([stories[k] for k in held]), strict=True))
        unsafe = sum(not verdicts[k].ok for k in split.held_unsafe)
        kept = sorted(k for k in split.held_kept if not verdicts[k].ok)
        print(f"\n(b) held-out stories the whole gate flags (seed {args.seed})")
        print(f"  reader-unsafe {unsafe}/{len(split.held_unsafe)}")
        print(
            f"  reader-kept   {len(kept)}/{len(split.held_kept)} "
            f"({len(kept) / len(split.held_kept):.1%})"
        )
        for key in kept[: args.show]:
            print(f"    {key} {stories[key][0]!r}: {verdicts[key].line()}")
        texts = [m["sentence"] for m in held_misses]
        found = score([Example(t, "unsuitable", "held-out") for t in texts], head)
        alone = sum(s >= head.sentence_threshold for s in found)
        gate = sum(not check_text(t).ok for t in texts)
        print(
            f"  held-out miss sentences flagged: meaning alone {alone}/{len(texts)}, "
            f"gate {gate}/{len(texts)}"
        )

        if args.corpus:
            training = all_training_examples(args.corpus, 0) + catalogue_examples(split, stories)
            dev = development_examples(args.corpus, training)
            print("\n(c) development set, meaning check alone:")
            print(evaluate_head(head, dev).report())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Live path latency: wall time of ``LiveStoryteller.tell`` for a ~150-word story.

Loads the model once (warm, like the skill), then asks for ``--n`` stories one after another
and prints p50/p95/max wall time, how many came back (None = rejected or past the deadline)
and their length.

    .venv/bin/python bench/bench_live.py --model generator/shipped_model --n 40
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--deadline", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--engine", choices=["hf", "ct2", "auto"], default="auto")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    from generator.batch import read_keyword_file
    from generator.live import LiveStoryteller

    words = read_keyword_file()
    rng = random.Random(args.seed)
    load_started = time.monotonic()
    teller = LiveStoryteller(
        args.model, deadline_s=args.deadline, threads=args.threads, engine=args.engine
    )
    if not teller.wait_ready(300):
        raise SystemExit("model failed to load")
    print(
        f"loaded + warmed up in {time.monotonic() - load_started:.1f}s "
        f"(engine {args.engine}, deadline {args.deadline}s)"
    )
    times, lengths, returned = [], [], 0
    for _ in range(args.n):
        keywords = rng.sample(words, rng.choice([1, 1, 2]))
        started = time.monotonic()
        story = teller.tell(keywords, timeout_s=args.deadline)
        times.append(time.monotonic() - started)
        if story is not None:
            returned += 1
            lengths.append(story.quality.get("words", 0))
    teller.close()
    print(
        f"{args.n} requests: p50 {percentile(times, 50):.2f}s  p95 {percentile(times, 95):.2f}s"
        f"  max {max(times):.2f}s  mean {statistics.mean(times):.2f}s"
    )
    print(
        f"stories returned {returned}/{args.n} (others rejected by the checks or late); "
        f"words per story {statistics.mean(lengths or [0]):.0f}"
    )


if __name__ == "__main__":
    main()

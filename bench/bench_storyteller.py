"""The storyteller's figures: bits/char, batch throughput and live latency, each over >= 3 runs.

    .venv/bin/python bench/bench_storyteller.py bpc --model DIR   # DIR: the prepared storyteller
    .venv/bin/python bench/bench_storyteller.py throughput --model DIR --batch-sizes 1 8 16
    .venv/bin/python bench/bench_storyteller.py live --model DIR --stories 10 --runs 3
    .venv/bin/python bench/bench_storyteller.py live --model generator/shipped_model --threads 1 \
        --keywords-from bench/rubric/live_requests.jsonl --one-per-request --save OUT.jsonl

``bpc``: bits per character on ``tinystories_valid_500.txt`` (lower is better) for the merged
fine-tuned weights (``hf/``) and the untouched base (``base/``), same conditioning (chat
request + title line) and also plain. ``throughput``: medium stories (best-of-1, judged),
generated tokens/s and stories/hour per batch size. ``live``: short stories one at a time as
the skill asks for them (best-of-1, deadline 6 s), latency p50/p95/max, how many passed, and
the made-up words of the stories served (``generator.storyteller.quality.made_up_words``).
Every figure is printed as min / median / max over the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KEYWORDS = [
    ["dragon", "boat"], ["kite", "moon"], ["owl"], ["teddy bear"], ["whale"], ["train", "star"],
    ["bunny", "garden"], ["robot"], ["penguin", "snow"], ["lighthouse"], ["fox", "river"],
    ["mermaid"], ["tractor", "farm"], ["unicorn"], ["balloon", "picnic"], ["hedgehog"],
]  # fmt: skip
EVAL_FILE = (
    Path(__file__).resolve().parents[1].parent / "shared/corpus/eval/tinystories_valid_500.txt"
)


def spread(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


def bench_bpc(args: argparse.Namespace) -> None:
    from generator.storyteller.evaluation import evaluate_storyteller

    rows = []
    for weights in args.weights:
        for plain in (False, True):
            report = evaluate_storyteller(
                args.model, args.text_file, args.documents, weights=weights, plain=plain
            )
            bpc = report["bpc"]
            rows.append((weights, bpc["conditioning"], bpc["bits_per_char"], bpc["n_documents"]))
            print(f"{weights:5s} {bpc['conditioning']:28s} {bpc['bits_per_char']:.4f} bits/char "
                  f"({bpc['n_documents']} stories)", flush=True)  # fmt: skip
    print(json.dumps(rows))


def bench_throughput(args: argparse.Namespace) -> None:
    from generator.storyteller.engine import StorytellerGenerator

    generator = StorytellerGenerator(args.model, threads=args.threads)
    config = generator.config.replace(length="medium", best_of=1)
    generator.generate([["moon"]], seed=0, config=config.replace(length="short"))  # warm-up
    for batch in args.batch_sizes:
        tok_s, per_hour, ok = [], [], []
        for run in range(args.runs):
            sets = [KEYWORDS[(run * batch + i) % len(KEYWORDS)] for i in range(batch)]
            tokens = generator.stats["tokens"]
            started = time.perf_counter()
            stories = generator.generate(sets, seed=run, config=config)
            took = time.perf_counter() - started
            tok_s.append((generator.stats["tokens"] - tokens) / took)
            per_hour.append(len(stories) * 3600 / took)
            ok.append(sum(s.status == "approved" for s in stories) / len(stories))
        print(f"batch {batch:3d}: tokens/s {spread(tok_s)}; stories/hour {spread(per_hour)}; "
              f"accepted {spread(ok)}", flush=True)  # fmt: skip


def read_requests(path: str) -> list[list[str]]:
    """Keyword sets from a JSONL whose lines have ``keywords`` (e.g. a file of live stories)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [list(json.loads(line)["keywords"]) for line in lines if line.strip()]


def bench_live(args: argparse.Namespace) -> None:
    from generator.live import LiveStoryteller
    from generator.storyteller.quality import made_up_words

    requests = read_requests(args.keywords_from) if args.keywords_from else KEYWORDS
    per_run = args.stories or (len(requests) if args.keywords_from else 10)
    teller = LiveStoryteller(args.model, deadline_s=args.deadline, threads=args.threads)
    if not teller.wait_ready(600):
        raise SystemExit("the live model did not load")
    p50s, p95s, maxes, served, invented, n_words = [], [], [], [], [], []
    told: list[dict] = []
    first: dict[int, dict] = {}  # request index -> the first story served for it
    for run in range(args.runs):
        latencies, ok = [], 0
        for i in range(per_run):
            index = (run * per_run + i) % len(requests)
            keywords = requests[index]
            started = time.perf_counter()
            story = teller.tell(keywords)
            latencies.append(time.perf_counter() - started)
            ok += story is not None
            if story is not None:
                told.append({"title": story.title, "text": story.text, "keywords": keywords})
                first.setdefault(index, told[-1])
                invented.append(len(made_up_words(story.text)))
                n_words.append(len(story.text.split()))
        latencies.sort()
        p50s.append(statistics.median(latencies))
        p95s.append(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))])
        maxes.append(latencies[-1])
        served.append(ok / per_run)
        print(f"run {run + 1}: p50 {p50s[-1]:.2f}s p95 {p95s[-1]:.2f}s max {maxes[-1]:.2f}s "
              f"served {ok}/{per_run}", flush=True)  # fmt: skip
    print(f"live p50 {spread(p50s)} s; p95 {spread(p95s)} s; max {spread(maxes)} s; "
          f"served {spread(served)} (min / median / max of {args.runs} runs)")  # fmt: skip
    if told:
        print(f"served stories: {len(told)}, {statistics.median(n_words):.0f} words median; "
              f"made-up words {sum(invented)} ({1000 * sum(invented) / sum(n_words):.1f} per "
              f"1,000 words, in {sum(bool(n) for n in invented)} stories)")  # fmt: skip
    teller.close()
    if args.save:
        if args.one_per_request:
            missing = [requests[i] for i in range(len(requests)) if i not in first]
            told = [first[i] for i in sorted(first)]
            if missing:
                print(f"never served in {args.runs} runs: {missing}")
        Path(args.save).write_text("".join(json.dumps(t) + "\n" for t in told), encoding="utf-8")
        print(f"{len(told)} live stories written to {args.save}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    bpc = sub.add_parser("bpc")
    bpc.add_argument("--model", required=True)
    bpc.add_argument("--text-file", default=str(EVAL_FILE))
    bpc.add_argument("--documents", type=int, default=500)
    bpc.add_argument("--weights", nargs="+", default=["hf", "base"])
    thr = sub.add_parser("throughput")
    thr.add_argument("--model", required=True)
    thr.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16])
    thr.add_argument("--runs", type=int, default=3)
    thr.add_argument("--threads", type=int, default=None)
    live = sub.add_parser("live")
    live.add_argument("--model", required=True)
    live.add_argument(
        "--stories",
        type=int,
        default=None,
        help="Requests per run (default 10; with --keywords-from, all of them).",
    )
    live.add_argument(
        "--keywords-from",
        help="Ask for the keyword sets of this JSONL's lines "
        "(e.g. bench/rubric/live_requests.jsonl) instead of the built-in list.",
    )
    live.add_argument(
        "--one-per-request",
        action="store_true",
        help="--save keeps the first story served for each request, in order.",
    )
    live.add_argument("--runs", type=int, default=3)
    live.add_argument("--deadline", type=float, default=6.0)
    live.add_argument("--threads", type=int, default=2)
    live.add_argument("--save", help="Write the stories told to this JSONL (for the rubric).")
    args = parser.parse_args()
    {"bpc": bench_bpc, "throughput": bench_throughput, "live": bench_live}[args.what](args)


if __name__ == "__main__":
    main()

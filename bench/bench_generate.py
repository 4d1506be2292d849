"""Batch generation throughput: ours (batched, keyword-guaranteed) vs plain HF generate, batch 1.

Same model, same sampling settings, same keyword sets, one run each. Prints stories/hour and
generated tokens/s for:

* ``hf-generate-b1``: ``model.generate(do_sample=True, ...)`` one prompt at a time, keywords in
  the prompt only (the naive baseline);
* ``ours-hf-bN``: our left-padded batch loop with the keyword guide (``StoryGenerator`` engine hf);
* ``ours-ct2-bN``: CTranslate2 int8 sampling + guided HF redo of stories that missed a keyword
  (``StoryGenerator`` engine ct2; converted on the fly when ``<model>/ct2`` is missing).

Each row also reports keyword inclusion and the share of stories passing every check, because
throughput that produces unusable stories is not throughput.

    .venv/bin/python bench/bench_generate.py --model generator/shipped_model --n 48
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n", type=int, default=48, help="stories per method")
    parser.add_argument(
        "--baseline-n",
        type=int,
        default=None,
        help="stories for the slow batch-1 baseline [default: --n]",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-ct2", action="store_true")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from generator.batch import read_keyword_file
    from generator.generation.assemble import assemble_story, story_prompt
    from generator.generation.config import StoryConfig
    from generator.generation.story_generator import StoryGenerator

    words = read_keyword_file()
    rng = random.Random(args.seed)
    sets = [rng.sample(words, 1 + i % 2) for i in range(args.n)]
    gen = StoryGenerator(args.model, StoryConfig(), engine="hf", threads=args.threads)
    config = gen.config
    print(
        f"model {gen.model_name}: {sum(p.numel() for p in gen.model.parameters()) / 1e6:.1f}M "
        f"params, torch threads {torch.get_num_threads()}, max_new_tokens "
        f"{config.max_new_tokens}, {args.n} stories per method"
    )

    def report(name: str, stories: list, tokens: int, seconds: float) -> float:
        ok = sum(s.status == "approved" for s in stories)
        inc = sum(not s.quality.get("keywords_missing") for s in stories)
        print(
            f"{name:>16}: {len(stories) / seconds * 3600:8.0f} stories/h  "
            f"({ok / seconds * 3600:8.0f} approved/h)  "
            f"{tokens / seconds:7.0f} tokens/s  ({len(stories)} stories, {tokens} tokens, "
            f"{seconds:.1f}s) keyword inclusion {100 * inc / len(stories):.0f}%, "
            f"pass all checks {100 * ok / len(stories):.0f}%"
        )
        return len(stories) / seconds

    # Baseline: plain HF generate, batch 1.
    base_sets = sets[: args.baseline_n or args.n]
    tok = gen.tokenizer
    torch.manual_seed(args.seed)
    stories, tokens = [], 0
    started = time.monotonic()
    for kws in base_sets:
        prompt = story_prompt(kws, config)
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = gen.model.generate(
                **ids,
                do_sample=True,
                temperature=config.temperature,
                top_k=config.top_k,
                top_p=config.top_p,
                repetition_penalty=config.repetition_penalty,
                no_repeat_ngram_size=config.no_repeat_ngram_size,
                max_new_tokens=config.max_new_tokens,
                min_new_tokens=config.min_story_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        new = out[0, ids["input_ids"].shape[1] :].tolist()
        tokens += len(new)
        text = tok.decode(new, skip_special_tokens=False)
        stories.append(assemble_story(text, kws, config, prompt=prompt))
    base_rate = report("hf-generate-b1", stories, tokens, time.monotonic() - started)

    rates = {}
    engines = [("hf", gen)]
    if not args.skip_ct2:
        engines.append(
            ("ct2", StoryGenerator(args.model, StoryConfig(), engine="ct2", threads=args.threads))
        )
    for name, engine in engines:
        engine.generate(sets[:2], seed=0)  # warm-up
        before = dict(engine.stats)
        stories = []
        started = time.monotonic()
        for start in range(0, len(sets), args.batch_size):
            stories += engine.generate(sets[start : start + args.batch_size], seed=start)
        elapsed = time.monotonic() - started
        tokens = engine.stats["tokens"] - before["tokens"]
        rates[name] = report(f"ours-{name}-b{args.batch_size}", stories, tokens, elapsed)
        if name == "ct2":
            print(
                f"{'':>16}  ct2 stories redone with the guided HF loop: "
                f"{engine.stats['regenerated'] - before['regenerated']}"
            )
    for name, rate in rates.items():
        print(f"speed-up ours-{name} vs hf-generate-b1: {rate / base_rate:.1f}x stories/h")


if __name__ == "__main__":
    main()

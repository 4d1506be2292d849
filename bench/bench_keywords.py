"""Keyword inclusion and fluency: guaranteed decoding vs keyword-prefix-only vs unconstrained.

Same model, same sampling settings, same keyword sets (singles, pairs and triples drawn from the
starter keywords). Methods: ``guaranteed`` (our HF loop + keyword guide), ``guaranteed-ct2``
(CTranslate2 int8 sampling + rewind-and-insert, guided HF redo as last resort), ``prefix-only``
(keywords in the prompt, same loop, no guide: the reference approach) and ``unconstrained`` (no
keywords at all). Prints, per method: inclusion (every requested keyword in the final, cut
story), bits-per-char of the generated text scored by the model itself *unconditioned*
(``<|story|> text``), how often the first keyword mention is in the first sentence (placement),
words per story and the share of stories that pass every check.

    .venv/bin/python bench/bench_keywords.py --model generator/shipped_model --n 96
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def keyword_sets(n: int, seed: int) -> list[list[str]]:
    from generator.batch import read_keyword_file

    words = read_keyword_file()
    rng = random.Random(seed)
    sizes = [1, 2, 2, 3]
    return [rng.sample(words, sizes[i % len(sizes)]) for i in range(n)]


def first_sentence_share(text: str, keywords: list[str]) -> float | None:
    """Share of keywords whose first mention is inside the story's first sentence."""
    from generator.generation.assemble import keyword_in_text

    match = re.search(r"[.!?][\"')]*\s", text)
    first = text[: match.end()] if match else text
    hits = [keyword_in_text(k, first) for k in keywords if keyword_in_text(k, text)]
    return sum(hits) / len(hits) if hits else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory (or 'shipped')")
    parser.add_argument("--n", type=int, default=96, help="stories per method")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--config", help="StoryConfig JSON")
    parser.add_argument("--skip-ct2", action="store_true", help="no CTranslate2 row")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from generator.generation.assemble import assemble_story, keyword_in_text, story_prompt
    from generator.generation.config import StoryConfig
    from generator.generation.sampling import bits_per_char, sample_batch
    from generator.generation.story_generator import StoryGenerator

    config = StoryConfig.from_json(args.config) if args.config else StoryConfig()
    gen = StoryGenerator(args.model, config, engine="hf", threads=args.threads)
    config = gen.config
    sets = keyword_sets(args.n, args.seed)
    methods: dict[str, tuple[bool, bool]] = {
        "guaranteed": (True, True),
        "prefix-only": (True, False),
        "unconstrained": (False, False),
    }
    ct2_gen = None
    if not args.skip_ct2:
        try:
            ct2_gen = StoryGenerator(
                args.model, config, engine="ct2", threads=args.threads, adaptive=False
            )
            methods = {"guaranteed": (True, True), "guaranteed-ct2": (True, True), **methods}
        except Exception as exc:
            print(f"(no CTranslate2 row: {exc})")
    print(
        f"model {gen.model_name} ({sum(p.numel() for p in gen.model.parameters()) / 1e6:.1f}M "
        f"params), {args.n} stories/method, T={config.temperature} top_k={config.top_k} "
        f"top_p={config.top_p} rep={config.repetition_penalty} "
        f"no_repeat={config.no_repeat_ngram_size} max_new={config.max_new_tokens}"
    )
    results = {}
    for name, (keywords_in_prompt, enforce) in methods.items():
        started = time.monotonic()
        texts, included, kw_total, kw_hit, approved, words, placement = [], 0, 0, 0, 0, [], []
        for start in range(0, len(sets), args.batch_size):
            chunk = sets[start : start + args.batch_size]
            if name == "guaranteed-ct2":
                assert ct2_gen is not None
                stories = ct2_gen.generate(chunk, seed=args.seed + start)
            else:
                prompts = [story_prompt(k if keywords_in_prompt else [], config) for k in chunk]
                raws = sample_batch(
                    gen.model,
                    gen.tokenizer,
                    prompts,
                    chunk,
                    config,
                    enforce_keywords=enforce,
                    seed=args.seed + start,
                )
                stories = [
                    assemble_story(r.text, k, config, prompt=r.prompt, finished=r.finished)
                    for r, k in zip(raws, chunk, strict=True)
                ]
            for story, kws in zip(stories, chunk, strict=True):
                text = story.text if story.quality.get("words") else ""
                texts.append(text)
                hits = [keyword_in_text(k, text) for k in kws]
                kw_total += len(kws)
                kw_hit += sum(hits)
                included += all(hits)
                approved += story.status == "approved"
                words.append(story.quality.get("words", 0))
                share = first_sentence_share(text, kws)
                if share is not None:
                    placement.append(share)
        elapsed = time.monotonic() - started
        bpc = bits_per_char(gen.model, gen.tokenizer, [t for t in texts if t])
        results[name] = bpc
        print(
            f"{name:>14}: inclusion {100 * included / len(sets):5.1f}% of stories "
            f"({100 * kw_hit / kw_total:5.1f}% of keywords) | BPC {bpc:.3f} | "
            f"first-sentence mentions {100 * statistics.mean(placement or [0]):4.1f}% | "
            f"words {statistics.mean(words):5.1f} | pass all checks "
            f"{100 * approved / len(sets):5.1f}% | {elapsed:.0f}s"
        )
    base = results["unconstrained"]
    for name, bpc in results.items():
        if name != "unconstrained":
            print(f"BPC {name} vs unconstrained: {100 * (bpc / base - 1):+.1f}%")
    if ct2_gen is not None:
        print(
            f"guaranteed-ct2: {ct2_gen.stats.get('inserted', 0)} keyword insertions, "
            f"{ct2_gen.stats['regenerated']} stories redone with the guided HF loop"
        )


if __name__ == "__main__":
    main()

"""Training throughput on this machine: tokens/s per preset, fp32 vs bf16 autocast, on CPU.

Run: ``.venv/bin/python bench/bench_train.py --presets small medium --threads 2``. Prints one
line per (preset, dtype) so the training preset can be chosen for a time budget.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

logger = logging.getLogger("bench_train")


def bench(
    preset: str, vocab: int, block: int, batch: int, bf16: bool, steps: int, keyword_weight: float
) -> tuple[float, int]:
    """Mean training tokens/s over ``steps`` steps (after one warm-up) and the param count."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from generator.keyword_loss import keyword_loss
    from generator.modeling import PRESETS, count_params

    shape = PRESETS[preset]
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=vocab,
            n_positions=max(block, 128),
            n_embd=shape.n_embd,
            n_layer=shape.n_layer,
            n_head=shape.n_head,
        )
    )
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, vocab, (batch, block))
    keyword_ids = torch.randint(0, vocab, (batch, 4))
    story_mask = torch.ones(batch, block, dtype=torch.bool)
    elapsed = 0.0
    for step in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(input_ids=ids, labels=ids)
            loss = out.loss
            if keyword_weight:
                loss = loss + keyword_weight * keyword_loss(out.logits, keyword_ids, story_mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            elapsed += time.perf_counter() - start
    return batch * block * steps / elapsed, count_params(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["small", "medium"])
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keyword-weight", type=float, default=0.5)
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for preset in args.presets:
        for dtype in args.dtypes:
            tok_s, n = bench(
                preset,
                args.vocab,
                args.block,
                args.batch,
                dtype == "bf16",
                args.steps,
                args.keyword_weight,
            )
            logger.info(
                "preset=%-7s params=%6.2fM dtype=%s threads=%d tokens/s=%8.0f",
                preset,
                n / 1e6,
                dtype,
                args.threads,
                tok_s,
            )


if __name__ == "__main__":
    main()

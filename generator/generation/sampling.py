"""The sampling loop: one story per prompt, left-padded batches, the keyword guide in the loop.

:func:`sample_batch` applies the processors in the right order (penalties, keywords, then
temperature/top-k/top-p, so a boosted keyword can enter the nucleus), drops finished rows from the
KV cache and penalises only generated tokens (penalising the prompt would punish the keywords).
:func:`bits_per_char` scores texts under the model (fluency check of forced keywords).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from generator.generation.assemble import keyword_in_text
from generator.generation.config import StoryConfig
from generator.generation.guide import NEG_INF, KeywordGuide, token_tables
from generator.prompting import END_TOKEN


@dataclass
class RawGeneration:
    """What the model wrote for one prompt, before parsing and checks."""

    prompt: str
    keywords: tuple[str, ...]
    token_ids: list[int]
    text: str  # decoded continuation (special tokens kept so the prompt format can be parsed)
    finished: bool  # the model ended the story itself
    keywords_satisfied: bool
    forced_tokens: int = 0
    seconds: float = 0.0


def sample_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    keyword_sets: Sequence[Sequence[str]],
    config: StoryConfig | None = None,
    *,
    enforce_keywords: bool = True,
    seed: int | None = None,
    deadline: float | None = None,
) -> list[RawGeneration]:
    """Sample one story per prompt with left-padded batched decoding and the keyword guide.

    ``enforce_keywords=False`` gives the reference behaviour (keywords only in the prompt), with
    the same loop and config. ``deadline`` (a ``time.monotonic()`` value) stops early; rows
    still running then come back unfinished.
    """
    config = config or StoryConfig()
    started = time.monotonic()
    tables = token_tables(tokenizer, getattr(model.config, "vocab_size", None))
    device = next(model.parameters()).device
    batch = [
        list(tokenizer.encode(p, add_special_tokens=False)) or [tables.eos_id] for p in prompts
    ]
    width = max(len(ids) for ids in batch)
    pad = tables.eos_id
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=device)
    attention = torch.tensor(
        [[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device
    )
    in_story = [bool(ids) and ids[-1] == tables.story_id for ids in batch]
    guide = KeywordGuide(tables, keyword_sets, config, in_story, enforce_keywords)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed if seed is not None else int(time.time_ns() % (2**31)))
    outputs: list[list[int]] = [[] for _ in prompts]
    ngrams: list[dict[tuple[int, ...], set[int]]] = [{} for _ in prompts]
    seen: torch.Tensor | None = None
    if config.repetition_penalty != 1.0:
        seen = torch.zeros(
            (len(prompts), int(model.config.vocab_size)), dtype=torch.bool, device=device
        )
    active = list(range(len(prompts)))
    n = config.no_repeat_ngram_size

    from transformers import DynamicCache

    cache = DynamicCache()
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = _forward(model, cache, input_ids, attention, positions)
        cache = _cache_of(out, cache)
        logits = out.logits[:, -1, :].float()
        next_pos = positions[:, -1] + 1
        for _step in range(config.max_new_tokens):
            scores = logits
            if scores.shape[1] > tables.vocab_size:
                scores[:, tables.vocab_size :] = NEG_INF
            if seen is not None:
                # Generated tokens only (the prompt's keywords must not be penalised).
                penalty = config.repetition_penalty
                penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
                scores = torch.where(seen, penalised, scores)
            for slot, row in enumerate(active):
                row_scores = scores[slot]
                generated = outputs[row]
                if generated and n > 0 and len(generated) >= n - 1:
                    banned = ngrams[row].get(tuple(generated[len(generated) - n + 1 :]))
                    if banned:
                        row_scores[list(banned)] = NEG_INF
                guide.adjust(row, row_scores)
            next_tokens = _sample(scores, config, generator)
            if seen is not None:
                seen[torch.arange(len(active), device=device), next_tokens] = True
            finished_slots = []
            for slot, row in enumerate(active):
                token = int(next_tokens[slot])
                generated = outputs[row]
                generated.append(token)
                if n > 0 and len(generated) >= n:
                    key = tuple(generated[-n:-1])
                    ngrams[row].setdefault(key, set()).add(generated[-1])
                guide.observe(row, token)
                if guide.rows[row].finished:
                    finished_slots.append(slot)
            if len(finished_slots) == len(active):
                active = []
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            if finished_slots:
                keep = [s for s in range(len(active)) if s not in set(finished_slots)]
                keep_t = torch.tensor(keep, device=device)
                cache.batch_select_indices(keep_t)
                attention = attention[keep_t]
                next_tokens = next_tokens[keep_t]
                next_pos = next_pos[keep_t]
                if seen is not None:
                    seen = seen[keep_t]
                active = [active[s] for s in keep]
            attention = torch.cat(
                [attention, torch.ones((len(active), 1), dtype=attention.dtype, device=device)], 1
            )
            out = _forward(
                model, cache, next_tokens.unsqueeze(-1), attention, next_pos.unsqueeze(-1)
            )
            cache = _cache_of(out, cache)
            logits = out.logits[:, -1, :].float()
            next_pos = next_pos + 1
    elapsed = time.monotonic() - started
    results = []
    for row, prompt in enumerate(prompts):
        state = guide.rows[row]
        ids = outputs[row]
        finished = state.finished
        if finished and ids and ids[-1] == tables.eos_id:
            ids = ids[:-1]
        text = tokenizer.decode(ids, skip_special_tokens=False)
        results.append(
            RawGeneration(
                prompt=prompt,
                keywords=tuple(t.keyword for t in state.tries),
                token_ids=ids,
                text=text + (END_TOKEN if finished else ""),
                finished=finished,
                keywords_satisfied=all(state.satisfied)
                or all(keyword_in_text(t.keyword, state.story_text) for t in state.tries),
                forced_tokens=state.forced_tokens,
                seconds=elapsed,
            )
        )
    return results


def _forward(model: Any, cache: Any, input_ids: Any, attention: Any, positions: Any) -> Any:
    """One decoder step with the KV cache (transformers 5 renamed ``past_key_values``)."""
    import inspect

    params = getattr(model, "_bedtime_forward_params", None)
    if params is None:
        params = set(inspect.signature(model.forward).parameters)
        with contextlib.suppress(AttributeError):
            model._bedtime_forward_params = params
    kwargs: dict[str, Any] = {"cache": cache} if "cache" in params else {"past_key_values": cache}
    if "logits_to_keep" in params:
        kwargs["logits_to_keep"] = 1
    return model(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **kwargs,
    )


def _cache_of(out: Any, previous: Any) -> Any:
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = getattr(out, "past_key_values", None)
    return cache if cache is not None else previous


def _sample(scores: torch.Tensor, config: StoryConfig, generator: torch.Generator) -> Any:
    """Temperature, top-k, top-p, then one multinomial draw per row (greedy at temperature 0).

    With top-k on, everything happens on the k best logits per row ([B, k] instead of
    [B, vocab]): sorting and sampling the full vocabulary was a fifth of the step time.
    """
    if config.temperature <= 0:
        return scores.argmax(-1)
    if 0 < config.top_k < scores.shape[-1]:
        values, indices = torch.topk(scores, config.top_k, dim=-1)  # sorted, descending
    else:
        values, indices = torch.sort(scores, descending=True, dim=-1)
    values = values / config.temperature
    if 0 < config.top_p < 1.0:
        probs = values.softmax(-1)
        remove = probs.cumsum(-1) - probs > config.top_p  # always keeps the best token
        values = values.masked_fill(remove, NEG_INF)
    probs = values.softmax(-1)
    bad = ~torch.isfinite(probs).all(-1)
    if bad.any():  # a row with everything banned: take its best remaining token
        probs[bad] = 0.0
        probs[bad, 0] = 1.0
    choice = torch.multinomial(probs, 1, generator=generator)
    return indices.gather(-1, choice).squeeze(-1)


# --------------------------------------------------------------------------- scoring


def bits_per_char(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 8) -> float:
    """Bits per character of ``texts`` under the model, unconditioned (``<|story|> text<|end|>``).

    Used to check that keyword forcing does not make the text less fluent than plain sampling.
    """
    from generator.prompting import format_unconditional

    total_bits, total_chars = 0.0, 0
    tables = token_tables(tokenizer, getattr(model.config, "vocab_size", None))
    limit = int(
        getattr(model.config, "n_positions", 0)
        or getattr(model.config, "max_position_embeddings", 1024)
    )
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            chunk = [t for t in texts[start : start + batch_size] if t.strip()]
            if not chunk:
                continue
            encoded = [
                tokenizer.encode(format_unconditional(t), add_special_tokens=False)[:limit]
                for t in chunk
            ]
            width = max(len(e) for e in encoded)
            ids = torch.tensor([e + [tables.eos_id] * (width - len(e)) for e in encoded])
            mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded])
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            logprobs = logits.log_softmax(-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            total_bits += float(-(logprobs * mask[:, 1:]).sum()) / math.log(2)
            total_chars += sum(len(t.strip()) + 1 for t in chunk)  # +1: the end of the story
    return total_bits / max(1, total_chars)

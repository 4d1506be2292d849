"""The story generator: a loaded model and a :class:`StoryConfig` that turn keyword sets into
checked stories (``generator.generation.assemble.GeneratedStory``).

Two engines. ``hf``: our batched sampling loop with the keyword guide. ``ct2``: CTranslate2 int8,
which has no logits hook, so the keyword guarantee is kept by rewind-and-insert (see
``StoryGenerator._ct2_insert_keywords``) with the guided HF loop as last resort.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from generator.generation.assemble import (
    GeneratedStory,
    assemble_story,
    keyword_in_text,
    story_prompt,
)
from generator.generation.config import StoryConfig
from generator.generation.ct2 import (
    cached_ct2_export,
    ct2_dir,
    ct2_sampling_options,
    fix_ct2_config,
)
from generator.generation.guide import SENTENCE_END, token_tables
from generator.generation.sampling import RawGeneration, sample_batch
from generator.prompting import END_TOKEN

logger = logging.getLogger(__name__)


def _find_key(meta: Any, key: str) -> int | None:
    """First integer ``key`` anywhere in the nested ``bedtime_model.json``."""
    if isinstance(meta, dict):
        if isinstance(meta.get(key), int):
            return int(meta[key])
        for value in meta.values():
            found = _find_key(value, key)
            if found:
                return found
    return None


def model_display_name(path: Path, meta: dict[str, Any]) -> str:
    """Registry name of a model: its ``name``, else directory + creation time (unique per run)."""
    if meta.get("name"):
        return str(meta["name"])
    created = str(meta.get("created_at") or "")
    return f"{Path(path).name}@{created}" if created else Path(path).name


class StoryGenerator:
    """A loaded model plus settings that turns keyword sets into checked stories.

    ``engine``: ``"hf"`` runs our batched sampling loop with the keyword guide. ``"ct2"``
    samples with CTranslate2 int8, whose Python API takes no logits processor, so the keyword
    guarantee is done by rewind-and-insert (:meth:`_ct2_insert_keywords`: put a missing keyword
    at the word start where the model finds it most likely, resample the rest) and, for what
    is still missing after that, by the guided HF loop. ``"auto"`` uses ct2 when CTranslate2
    is installed (``<model_dir>/ct2``, else a cached int8 conversion) and HF otherwise. With
    ``adaptive`` the ct2 engine measures its cost per story and its fallback rate, and uses
    guided HF for batches whenever that is cheaper.
    """

    def __init__(
        self,
        model_path: str | Path,
        config: StoryConfig | None = None,
        engine: str = "auto",
        require_human_review: bool = False,
        threads: int | None = None,
        adaptive: bool = True,
        insert_rounds: int = 3,
    ) -> None:
        from generator.artifacts import load_model

        if threads:
            torch.set_num_threads(threads)
        self.loaded = load_model(model_path)
        self.model = self.loaded.model
        self.path = self.loaded.path
        self.model_class = type(self.model).__name__
        self.tokenizer = self.loaded.tokenizer
        self.meta = self.loaded.meta
        self.model_name = model_display_name(self.loaded.path, self.meta)
        self.config = self._fit_to_model(config or StoryConfig())
        self.require_human_review = require_human_review
        self.tables = token_tables(self.tokenizer, getattr(self.model.config, "vocab_size", None))
        self.ct2: Any = None
        if engine in {"ct2", "auto"}:
            try:
                ct2_path = ct2_dir(self.loaded.path) or cached_ct2_export(self.loaded.path)
                import ctranslate2

                fix_ct2_config(ct2_path)
                self.ct2 = ctranslate2.Generator(
                    # One thread unless told otherwise: on the shared 2-core box 1 thread gave
                    # 8.2k tokens/s and the default (all cores) 2.3k, fighting other work.
                    str(ct2_path),
                    device="cpu",
                    compute_type="int8",
                    intra_threads=threads or 1,
                )
            except Exception:
                if engine == "ct2":
                    raise
                logger.warning("CTranslate2 unavailable, using the HF loop", exc_info=True)
        self.engine = "ct2" if self.ct2 is not None else "hf"
        self.stats = {
            "generated": 0,
            "tokens": 0,
            "regenerated": 0,
            "ct2_sampled": 0,
            "seconds": 0.0,
        }
        self.adaptive = adaptive
        self.insert_rounds = insert_rounds
        self._cost: dict[str, list[float]] = {"ct2": [], "hf": []}
        self._batches = 0
        logger.info("story generator %s ready (engine %s)", self.model_name, self.engine)

    def _fit_to_model(self, config: StoryConfig) -> StoryConfig:
        """Keep stories inside the context the model was trained on (``block_size``)."""
        block = _find_key(self.meta, "block_size") or 0
        if block <= 0:
            return config
        cap = max(32, block - 20)
        if config.max_new_tokens <= cap:
            return config
        target = min(config.target_new_tokens, int(cap * 0.8))
        logger.info(
            "capping max_new_tokens %d -> %d (block_size %d)", config.max_new_tokens, cap, block
        )
        return replace(config, max_new_tokens=cap, target_new_tokens=target)

    def generate(
        self,
        keyword_sets: Sequence[Sequence[str]],
        seed: int | None = None,
        deadline: float | None = None,
        config: StoryConfig | None = None,
    ) -> list[GeneratedStory]:
        """One :class:`GeneratedStory` per keyword set (same order)."""
        config = config or self.config
        if self.engine == "ct2" and not config.guarantee_keywords:
            raws = self.sample_ct2(keyword_sets, seed, config)
            self._count(raws)
            return [self._assemble(r, k, config) for r, k in zip(raws, keyword_sets, strict=True)]
        if self.engine == "ct2" and self._ct2_pays_off():
            return self._generate_ct2(keyword_sets, seed, config, deadline)
        started = time.monotonic()
        stories = self._generate_hf(keyword_sets, seed, deadline, config)
        self._cost["hf"].append((time.monotonic() - started) / max(1, len(keyword_sets)))
        return stories

    def _ct2_pays_off(self) -> bool:
        """Measured choice between CT2 + guided redo of misses and guided HF for everything.

        Per story, the hybrid costs ``ct2 + miss_rate * hf`` and plain guided HF costs ``hf``;
        both are measured on the batches of this run. Every 8th batch probes CT2 again.
        """
        self._batches += 1
        ct2, hf = self._cost["ct2"][-20:], self._cost["hf"][-20:]
        if not self.adaptive or len(ct2) < 2 or not hf or self._batches % 8 == 0:
            return True
        miss_rate = self.stats["regenerated"] / max(1, self.stats["ct2_sampled"])
        ct2_cost, hf_cost = sum(ct2) / len(ct2), sum(hf) / len(hf)
        choice = ct2_cost + miss_rate * hf_cost < hf_cost
        if not choice and self._batches % 8 == 1:
            logger.info(
                "CT2 misses %.0f%% of keywords: guided HF is cheaper (%.2fs vs %.2fs + redo)",
                100 * miss_rate,
                hf_cost,
                ct2_cost,
            )
        return choice

    def _prompts(
        self, keyword_sets: Sequence[Sequence[str]], config: StoryConfig | None = None
    ) -> list[str]:
        return [story_prompt(list(k), config or self.config) for k in keyword_sets]

    def _assemble(
        self, raw: RawGeneration, keywords: Sequence[str], config: StoryConfig
    ) -> GeneratedStory:
        return assemble_story(
            raw.text,
            keywords,
            config,
            prompt=raw.prompt,
            finished=raw.finished,
            model_name=self.model_name,
            require_human_review=self.require_human_review,
            seconds=raw.seconds,
        )

    def _generate_hf(
        self,
        keyword_sets: Sequence[Sequence[str]],
        seed: int | None,
        deadline: float | None,
        config: StoryConfig,
    ) -> list[GeneratedStory]:
        raws = sample_batch(
            self.model,
            self.tokenizer,
            self._prompts(keyword_sets, config),
            keyword_sets,
            config,
            enforce_keywords=config.guarantee_keywords,
            seed=seed,
            deadline=deadline,
        )
        self._count(raws)
        return [self._assemble(r, k, config) for r, k in zip(raws, keyword_sets, strict=True)]

    def _count(self, raws: Sequence[RawGeneration]) -> None:
        self.stats["generated"] += len(raws)
        self.stats["tokens"] += sum(len(r.token_ids) for r in raws)
        if raws:
            self.stats["seconds"] += raws[0].seconds

    def sample_ct2(
        self, keyword_sets: Sequence[Sequence[str]], seed: int | None, config: StoryConfig
    ) -> list[RawGeneration]:
        """Prefix-only sampling with CTranslate2 (no keyword guide)."""
        import ctranslate2

        if seed is not None:
            ctranslate2.set_random_seed(seed)
        prompts = self._prompts(keyword_sets, config)
        started = time.monotonic()
        prompt_ids = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        # The first story token is sampled here under the same "story opening" rule as the HF
        # guide (CT2 cannot restrict one step), then CT2 continues.
        import numpy as np

        rng = np.random.default_rng(seed)
        firsts = [
            [self._sample_restricted(ids, config, np, rng, self.tables.bad_story_start)]
            if ids and ids[-1] == self.tables.story_id
            else []
            for ids in prompt_ids
        ]
        start_tokens = [
            self.tokenizer.convert_ids_to_tokens(ids + first)
            for ids, first in zip(prompt_ids, firsts, strict=True)
        ]
        results = self.ct2.generate_batch(
            start_tokens,
            max_length=config.max_new_tokens,
            **ct2_sampling_options(config),
            min_length=min(config.max_new_tokens, config.min_story_tokens + 4),
        )
        elapsed = time.monotonic() - started
        raws = []
        for prompt, keywords, result, first in zip(
            prompts, keyword_sets, results, firsts, strict=True
        ):
            ids = first + list(result.sequences_ids[0])
            finished = bool(ids) and ids[-1] == self.tables.eos_id
            if finished:
                ids = ids[:-1]
            text = self.tokenizer.decode(ids, skip_special_tokens=False)
            raws.append(
                RawGeneration(
                    prompt=prompt,
                    keywords=tuple(keywords),
                    token_ids=ids,
                    text=text + (END_TOKEN if finished else ""),
                    finished=finished,
                    keywords_satisfied=all(keyword_in_text(k, text) for k in keywords),
                    seconds=elapsed,
                )
            )
        return raws

    def _generate_ct2(
        self,
        keyword_sets: Sequence[Sequence[str]],
        seed: int | None,
        config: StoryConfig,
        deadline: float | None = None,
    ) -> list[GeneratedStory]:
        started = time.monotonic()
        raws = self.sample_ct2(keyword_sets, seed, config)
        self._count(raws)
        self.stats["ct2_sampled"] += len(raws)
        stories = [self._assemble(r, k, config) for r, k in zip(raws, keyword_sets, strict=True)]
        for _round in range(self.insert_rounds):
            todo = [i for i, s in enumerate(stories) if s.quality.get("keywords_missing")]
            if not todo:
                break
            inserted = self._ct2_insert_keywords(
                [raws[i] for i in todo],
                [stories[i].quality["keywords_missing"] for i in todo],
                [keyword_sets[i] for i in todo],
                config,
            )
            for index, raw in zip(todo, inserted, strict=True):
                if raw is not None:
                    raws[index] = raw
                    stories[index] = self._assemble(raw, keyword_sets[index], config)
        self._cost["ct2"].append((time.monotonic() - started) / max(1, len(keyword_sets)))
        redo = [i for i, s in enumerate(stories) if s.quality.get("keywords_missing")]
        if redo:
            # Still missing after insertion (or no room for it): redo with the guided HF loop,
            # so the keyword guarantee holds on this path too.
            self.stats["regenerated"] += len(redo)
            redo_started = time.monotonic()
            again = self._generate_hf([keyword_sets[i] for i in redo], seed, deadline, config)
            self._cost["hf"].append((time.monotonic() - redo_started) / len(redo))
            for index, story in zip(redo, again, strict=True):
                stories[index] = story
        return stories

    def _ct2_insert_keywords(
        self,
        raws: Sequence[RawGeneration],
        missing: Sequence[Sequence[str]],
        keyword_sets: Sequence[Sequence[str]],
        config: StoryConfig,
    ) -> list[RawGeneration | None]:
        """Rewind-and-insert, the CT2 form of the keyword guarantee (no logits hook in CT2).

        For each story, the first missing keyword goes where the model itself finds it most
        likely: one ``forward_batch`` pass scores the keyword's first token at every word start
        inside that keyword's staggered window (same idea as the HF schedule), the story is cut
        there, the keyword spelled, and CT2 samples the rest of the story from that point.
        None for rows where it cannot (no story marker, too short): the caller falls back.
        """
        import numpy as np

        tables = self.tables
        plans: list[tuple[int, list[int]] | None] = []
        for raw, lacking, keywords in zip(raws, missing, keyword_sets, strict=True):
            present = [k for k in keywords if k not in lacking]
            plans.append(self._plan_insertion(raw, lacking[0], list(keywords), present, config, np))
        rows = [i for i, plan in enumerate(plans) if plan is not None]
        results: list[RawGeneration | None] = [None] * len(raws)
        if not rows:
            return results
        starts: list[list[str]] = []
        budgets: list[int] = []
        needs: list[int] = []
        rng = np.random.default_rng(len(raws) + sum(len(r.token_ids) for r in raws))
        for i in rows:
            cut, word = plans[i]  # type: ignore[misc]
            prompt_ids = self.tokenizer.encode(raws[i].prompt, add_special_tokens=False)
            # The token after the keyword must start a new word ("dragon," not "dragonfly"):
            # CT2 cannot be told that for one step, so sample it here from the model's own
            # distribution restricted to word boundaries, then let CT2 go on.
            word = [
                *word,
                self._boundary_token(prompt_ids + raws[i].token_ids[:cut] + word, config, np, rng),
            ]
            plans[i] = (cut, word)
            prefix = list(raws[i].token_ids[:cut]) + word
            starts.append(self.tokenizer.convert_ids_to_tokens(prompt_ids + prefix))
            budgets.append(max(8, config.max_new_tokens - len(prefix)))
            needs.append(max(0, config.min_story_tokens - len(prefix)))
        outputs = self.ct2.generate_batch(
            starts,
            max_length=max(budgets),
            **ct2_sampling_options(config),
            min_length=max(0, min(min(needs), min(budgets) - 1)),
        )
        for i, output, budget in zip(rows, outputs, budgets, strict=True):
            cut, word = plans[i]  # type: ignore[misc]
            tail = list(output.sequences_ids[0])[:budget]
            finished = bool(tail) and tail[-1] == tables.eos_id
            if finished:
                tail = tail[:-1]
            ids = list(raws[i].token_ids[:cut]) + word + tail
            self.stats["tokens"] += len(tail)
            text = self.tokenizer.decode(ids, skip_special_tokens=False)
            results[i] = RawGeneration(
                prompt=raws[i].prompt,
                keywords=raws[i].keywords,
                token_ids=ids,
                text=text + (END_TOKEN if finished else ""),
                finished=finished,
                keywords_satisfied=False,
                forced_tokens=raws[i].forced_tokens + len(word),
                seconds=raws[i].seconds,
            )
        self.stats["inserted"] = self.stats.get("inserted", 0) + len(rows)
        return results

    def _boundary_token(self, ids: list[int], config: StoryConfig, np: Any, rng: Any) -> int:
        """Sample the next token among those that do not continue the current word."""
        return self._sample_restricted(ids, config, np, rng, self.tables.word_continuation)

    def _sample_restricted(
        self, ids: list[int], config: StoryConfig, np: Any, rng: Any, banned_mask: torch.Tensor
    ) -> int:
        """One CT2 step done by hand: sample the next token with ``banned_mask`` excluded."""
        tables = self.tables
        logits = np.asarray(self.ct2.forward_batch([ids], return_log_probs=True))[0, -1]
        logits = logits[: tables.vocab_size].astype("float64")
        size = len(logits)
        banned = banned_mask.numpy()[:size] | tables.banned_in_story.numpy()[:size]
        banned[tables.eos_id] = True
        logits[banned] = -np.inf
        top = np.argsort(logits)[::-1][: max(1, config.top_k or 40)]
        scaled = logits[top] / max(config.temperature, 1e-3)
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        return int(top[rng.choice(len(top), p=probs)])

    def _plan_insertion(
        self,
        raw: RawGeneration,
        keyword: str,
        keywords: list[str],
        present: list[str],
        config: StoryConfig,
        np: Any,
    ) -> tuple[int, list[int]] | None:
        """(cut index in ``raw.token_ids``, keyword tokens) at the most likely word start."""
        tables = self.tables
        ids = list(raw.token_ids)
        # No story marker: the whole continuation is the story (as parse_generation reads it).
        story_start = ids.index(tables.story_id) + 1 if tables.story_id in ids else 0
        story = ids[story_start:]
        if len(story) < 8:
            return None
        slot = keywords.index(keyword) if keyword in keywords else 0
        count = max(1, len(keywords))
        start, spread = config.keyword_start, config.keyword_spread
        lo = int(len(story) * (start + spread * slot / count))
        hi = int(len(story) * (start + spread * (slot + 1) / count + config.keyword_ramp))
        # Never cut before a keyword that is already in: the cut would drop it.
        keep_until, text = 0, ""
        if present:
            for position, token in enumerate(story, start=1):
                text += tables.texts[token]
                if all(keyword_in_text(k, text) for k in present):
                    keep_until = position
                    break
            else:
                return None
        lo = max(lo, keep_until)
        hi = min(max(hi, lo + 2), len(story))
        positions = range(max(1, lo), hi + 1)
        candidates = [
            p for p in positions if p == len(story) or tables.texts[story[p]].startswith(" ")
        ] or list(positions)
        if not candidates:
            return None
        prompt_ids = self.tokenizer.encode(raw.prompt, add_special_tokens=False)
        prefix = prompt_ids + ids[: story_start + max(candidates)]
        logprobs = np.asarray(self.ct2.forward_batch([prefix], return_log_probs=True))[0]
        trie = tables.trie(keyword)
        best: tuple[float, int, int] | None = None
        for p in candidates:
            text_before = "".join(tables.texts[t] for t in story[:p])
            capital = not text_before.strip() or bool(SENTENCE_END.search(text_before))
            firsts = trie.upper_first if capital and trie.upper_first else trie.lower_first
            row = logprobs[len(prompt_ids) + story_start + p - 1]
            for first in firsts:
                score = float(row[first])
                if best is None or score > best[0]:
                    best = (score, p, first)
        if best is None:
            return None
        _, p, first = best
        # The shortest full form starting with that token ("dragon" rather than "dragons").
        forms = sorted((t for t in trie.terminals if t[0] == first), key=len)
        if not forms:
            return None
        return story_start + p, list(forms[0])

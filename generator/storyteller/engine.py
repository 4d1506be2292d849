"""The storyteller at generation time: CTranslate2 int8 sampling, best-of-N, judged stories.

Keywords are asked for in the prompt and checked in the answer (:mod:`.quality`); nothing is ever
inserted into the text. Each keyword set gets ``best_of`` candidates sampled in one batch; the best
accepted one is kept, or the least bad one is returned as ``rejected`` with its reasons so the
batch job can try again within its attempt budget.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generator.storyteller.prompts import END_TOKEN, chat_messages
from generator.storyteller.quality import Candidate, Judgement, best_of, judge

logger = logging.getLogger(__name__)


#: (max new tokens, min words, max words) per requested length. A word is ~1.3 tokens.
LENGTHS: dict[str, tuple[int, int, int]] = {
    "short": (240, 60, 180),
    "medium": (700, 200, 520),
    "long": (1000, 380, 750),
}


#: Sampling that suits the storyteller (measured by reading its stories, see bench/).
STORYTELLER_SAMPLING: dict[str, Any] = {
    # Parent readers kept 3 of 57 judge-approved stories sampled at 0.7 and 58 of 147 at 0.5
    # (same run, same readers, blind to the temperature; README "The storyteller").
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 50,
    "repetition_penalty": 1.1,
    # A small model left alone loops ("He loved YOU! He loved YOU!", a title of one word
    # repeated for 700 tokens); blocking repeated 4-grams stops that at the source.
    "no_repeat_ngram_size": 4,
}


def default_config(model_dir: Path) -> Any:
    """The model's ``story_config.json`` if it has one, else our storyteller defaults."""
    from generator.generation.config import StoryConfig

    path = Path(model_dir) / "story_config.json"
    if path.is_file():
        return StoryConfig.from_json(path)
    return StoryConfig(**STORYTELLER_SAMPLING)


def is_storyteller_dir(path: str | Path) -> bool:
    """A prepared storyteller: merged HF weights' tokenizer, chat template and a CT2 export."""
    path = Path(path)
    meta = path / "bedtime_model.json"
    if meta.is_file():
        try:
            return json.loads(meta.read_text(encoding="utf-8")).get("family") == "storyteller"
        except ValueError:
            return False
    return False


class StorytellerGenerator:
    """Turns keyword sets into judged stories with the fine-tuned storyteller (CTranslate2)."""

    engine = "ct2"

    def __init__(
        self,
        model_dir: str | Path,
        config: Any = None,
        *,
        threads: int | None = None,
        require_human_review: bool = False,
    ) -> None:
        """``config``: a :class:`generator.generation.config.StoryConfig`; default: the model's
        own ``story_config.json`` (written by ``bedtime storyteller prepare``)."""
        import ctranslate2
        from transformers import AutoTokenizer

        self.path = Path(model_dir)
        meta_path = self.path / "bedtime_model.json"
        self.meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        self.model_name = str(self.meta.get("name") or self.path.name)
        self.model_class = str(self.meta.get("model_class") or "LlamaForCausalLM")
        self.config = config if config is not None else default_config(self.path)
        if self.config.length not in LENGTHS:
            raise ValueError(f"length must be one of {', '.join(LENGTHS)}")
        ct2_dir = self.path / "ct2"
        if not (ct2_dir / "model.bin").is_file():
            raise FileNotFoundError(
                f"{ct2_dir} has no CTranslate2 export: run `bedtime storyteller prepare`"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(self.path / "hf")
        self.ct2 = ctranslate2.Generator(
            str(ct2_dir), device="cpu", compute_type="int8", intra_threads=threads or 0
        )
        self.require_human_review = require_human_review
        self._reader: Any = None
        self.stats: dict[str, Any] = {"generated": 0, "tokens": 0, "seconds": 0.0, "candidates": 0}

    def reader(self, length: str = "medium") -> Any:
        """The reader model's scorer (``StoryConfig.reader_rank`` / ``reader_min_score``),
        loaded on first use; a model that reads log-probabilities gets them from this model,
        each reply scored after the request for ``length``."""
        from functools import partial

        if self._reader is None:
            from generator.storyteller.reader_model import ReaderScorer

            self._reader = ReaderScorer()
        self._reader.logprobs = partial(self._reply_logprobs, length=length)
        return self._reader

    def _reply_logprobs(
        self, stories: Sequence[tuple[Sequence[str], str, str]], length: str
    ) -> list[tuple[list[str], list[float]]]:
        from generator.storyteller.prompts import format_reply
        from generator.storyteller.reader_model import score_replies

        prompts = [self.prompt_tokens(keywords, length) for keywords, _, _ in stories]
        replies = [format_reply(title, text) for _, title, text in stories]
        return score_replies(self.ct2, self.tokenizer, prompts, replies)

    def _sampling(self, config: Any) -> dict[str, Any]:
        return {
            "sampling_temperature": config.temperature,
            "sampling_topp": config.top_p,
            "sampling_topk": config.top_k,
            "repetition_penalty": config.repetition_penalty,
            "no_repeat_ngram_size": config.no_repeat_ngram_size,
        }

    def prompt_tokens(self, keywords: Sequence[str], length: str) -> list[str]:
        ids = self.tokenizer.apply_chat_template(
            chat_messages(list(keywords), length), add_generation_prompt=True
        )
        if not isinstance(ids, list):
            ids = ids["input_ids"]
        return self.tokenizer.convert_ids_to_tokens(ids)

    def sample(
        self,
        keyword_sets: Sequence[Sequence[str]],
        *,
        length: str,
        n: int,
        seed: int | None = None,
        deadline: float | None = None,
        config: Any = None,
    ) -> list[list[Candidate]]:
        """``n`` candidates per keyword set, all in one CTranslate2 batch."""
        import ctranslate2

        if seed is not None:
            ctranslate2.set_random_seed(seed)
        max_tokens, min_words, _ = LENGTHS[length]
        prompts = [self.prompt_tokens(k, length) for k in keyword_sets for _ in range(n)]

        def stop_at_deadline(_step: Any) -> bool:
            return deadline is not None and time.monotonic() > deadline

        results = self.ct2.generate_batch(
            prompts,
            max_length=max_tokens,
            min_length=int(min_words * 1.2),
            include_prompt_in_result=False,
            end_token=END_TOKEN,
            return_end_token=True,
            return_scores=True,
            callback=stop_at_deadline if deadline is not None else None,
            **self._sampling(config or self.config),
        )
        end_id = self.tokenizer.convert_tokens_to_ids(END_TOKEN)
        candidates: list[Candidate] = []
        for result in results:
            ids = list(result.sequences_ids[0])
            finished = bool(ids) and ids[-1] == end_id
            if finished:
                ids = ids[:-1]
            score = result.scores[0] if result.scores else None
            candidates.append(
                Candidate(
                    reply=self.tokenizer.decode(ids, skip_special_tokens=True),
                    finished=finished,
                    mean_logprob=(float(score) / max(1, len(ids) + finished))
                    if score is not None
                    else None,
                    tokens=len(ids),
                )
            )
            self.stats["tokens"] += len(ids)
        self.stats["candidates"] += len(candidates)
        return [candidates[i * n : (i + 1) * n] for i in range(len(keyword_sets))]

    def generate(
        self,
        keyword_sets: Sequence[Sequence[str]],
        seed: int | None = None,
        deadline: float | None = None,
        config: Any = None,
    ) -> list[Any]:
        """One :class:`GeneratedStory` per keyword set, same order (the batch job's contract)."""
        config = config or self.config
        length, n = config.length, max(1, config.best_of)
        started = time.monotonic()
        groups = self.sample(
            keyword_sets, length=length, n=n, seed=seed, deadline=deadline, config=config
        )
        elapsed = time.monotonic() - started
        _, min_words, max_words = LENGTHS[length]
        stories = []
        for keywords, candidates in zip(keyword_sets, groups, strict=True):
            judged = [
                judge(c, keywords, min_words=min_words, max_words=max_words) for c in candidates
            ]
            if config.reader_rank or config.reader_min_score > 0:
                from generator.storyteller.reader_model import apply_reader

                apply_reader(judged, keywords, self.reader(length), config.reader_min_score)
            chosen = best_of(judged, by_reader=config.reader_rank)
            chosen.metrics["candidates"] = len(judged)
            chosen.metrics["accepted_candidates"] = sum(j.accepted for j in judged)
            stories.append(self._story(chosen, keywords, elapsed, length))
        self.stats["generated"] += len(stories)
        self.stats["seconds"] += elapsed
        return stories

    def _story(
        self, judged: Judgement, keywords: Sequence[str], seconds: float, length: str
    ) -> Any:
        from generator.generation.assemble import (
            APPROVED,
            PENDING,
            REJECTED,
            GeneratedStory,
            keyword_title,
        )

        approved = PENDING if self.require_human_review else APPROVED
        status = REJECTED if judged.problems else approved
        from generator.storyteller.prompts import story_request

        return GeneratedStory(
            title=judged.title or keyword_title(keywords),
            text=judged.text or "(no text)",
            keywords=tuple(keywords),
            status=status,
            rejection_reason="; ".join(judged.problems) or None,
            prompt=story_request(keywords, length),
            model_name=self.model_name,
            finished=bool(judged.metrics.get("finished")),
            quality=judged.metrics,
            safety=judged.metrics.get("safety", {}),
            seconds=seconds,
        )

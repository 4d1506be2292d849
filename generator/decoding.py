"""Keyword-guaranteed sampling: every requested keyword appears in the story, placed naturally.

transformers 5.x dropped constrained beam search (``force_words_ids`` needs hub remote code) and
beam search would not sample anyway, so this module does it with a logits schedule on top of
ordinary temperature / top-k / top-p sampling:

* a missing keyword's *first* token (leading-space BPE variants of every surface form: "dragon",
  "dragons", capitalised after a sentence end) gets a bias that grows as the story budget is used;
  keywords are staggered so they do not all land in the first sentence;
* once a boosted first token is sampled the rest of the word is forced through a token trie, then
  a word boundary is forced so "dragon" cannot become "dragonfly";
* end-of-story is forbidden while any keyword is missing, and past a hard deadline only the
  keyword's first tokens are allowed (the guarantee); after that, end-of-story is nudged at
  sentence ends so stories still finish properly.

CTranslate2 has no logits hook, so :class:`StoryGenerator`'s ct2 engine gets the same guarantee
by rewind-and-insert (see ``_ct2_insert_keywords``) with the guided HF loop as last resort.

The schedule lives in :class:`KeywordGuide`, used by :class:`KeywordLogitsProcessor` (drop-in for
``model.generate(logits_processor=...)``) and by :func:`sample_batch`, our own left-padded batch
sampling loop, which applies the processors in the right order (penalties, keywords, then
temperature/top-k/top-p, so a boosted keyword can enter the nucleus), drops finished rows from the
KV cache and penalises only generated tokens (penalising the prompt would punish the keywords).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor

from generator.assemble import keyword_in_text, keyword_pattern, keyword_surface_forms
from generator.prompting import END_TOKEN, KEYWORD_TOKEN, STORY_TOKEN, TITLE_TOKEN

logger = logging.getLogger(__name__)

NEG_INF = float("-inf")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s*$")
#: A sentence end the final cut (``assemble.cut_at_last_sentence``) will keep.
_CLOSED_SENTENCE = re.compile(r"[.!?][\"')\]]*\s")


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling knobs shared by every decoding path (HF loop, HF generate, CTranslate2)."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 4
    max_new_tokens: int = 250
    #: Expected story length in tokens: keyword windows and the end nudge are measured on it.
    target_new_tokens: int = 190
    #: End-of-story is not allowed before this many story tokens (0: the model decides).
    min_story_tokens: int = 0


@dataclass(frozen=True)
class KeywordSchedule:
    """When and how hard missing keywords are pushed (fractions of ``target_new_tokens``)."""

    start: float = 0.08  # the first keyword may be boosted from here
    spread: float = 0.45  # later keywords' windows start staggered over this fraction
    ramp: float = 0.25  # bias grows 0 -> max_bias over this fraction
    max_bias: float = 4.0
    bias_per_token_after_ramp: float = 0.5  # then keeps growing until the word is sampled
    #: Past this fraction of ``max_new_tokens`` (minus room for the word) only keyword tokens.
    hard_deadline: float = 0.8
    title_max_tokens: int = 24
    #: Bias on end-of-story at a sentence end, per token beyond target_new_tokens.
    end_bias_per_token: float = 0.08
    end_bias_max: float = 6.0
    #: In the last tokens of the budget, push sentence ends (and then the end of the story).
    wrap_up_tokens: int = 25
    wrap_up_bias: float = 3.0


# --------------------------------------------------------------------------- keyword tables


@dataclass
class KeywordTrie:
    """Token sequences spelling one keyword (all forms, leading-space variants)."""

    keyword: str
    pattern: re.Pattern[str]
    lower_first: list[int]  # first tokens of lower-case variants (boosted mid-sentence)
    upper_first: list[int]  # first tokens of capitalised variants (boosted after a sentence end)
    children: dict[tuple[int, ...], set[int]] = field(default_factory=dict)
    terminals: set[tuple[int, ...]] = field(default_factory=set)
    max_chars: int = 0


class TokenTables:
    """Per-tokenizer lookups: token texts, boundary masks, special ids. Built once per model."""

    def __init__(self, tokenizer: Any, vocab_size: int | None = None) -> None:
        self.tokenizer = tokenizer
        size = max(int(vocab_size or 0), len(tokenizer))
        self.vocab_size = size
        texts = []
        for token_id in range(size):
            try:
                texts.append(tokenizer.decode([token_id]) if token_id < len(tokenizer) else "")
            except Exception:  # pragma: no cover - ids past the tokenizer (padded embeddings)
                texts.append("")
        self.texts: list[str] = texts
        self.eos_id: int = _token_id(tokenizer, END_TOKEN, fallback=tokenizer.eos_token_id)
        self.story_id: int | None = _token_id(tokenizer, STORY_TOKEN)
        self.title_id: int | None = _token_id(tokenizer, TITLE_TOKEN)
        self.keywords_id: int | None = _token_id(tokenizer, KEYWORD_TOKEN)
        special = {i for i in (self.story_id, self.title_id, self.keywords_id) if i is not None}
        # Tokens that would glue onto the previous word ("fly" after "dragon").
        continues_word = [bool(t) and (t[0].isalnum() or t[0] in "-_") for t in texts]
        self.word_continuation = torch.tensor(continues_word, dtype=torch.bool)
        # Never inside a story: prompt markers, ids past the tokenizer, empty (unknown) tokens.
        banned = [not t for t in texts]
        for token_id in special:
            banned[token_id] = True
        banned[self.eos_id] = False
        self.banned_in_story = torch.tensor(banned, dtype=torch.bool)
        self.banned_in_title = self.banned_in_story.clone()
        if self.story_id is not None:
            self.banned_in_title[self.story_id] = False
        # A story opens like the training stories: a capitalised word or a quote ("Once",
        # "Lily", '"Look'), not a bare keyword - models trained with a keyword loss like to
        # start with "dragon." right after <|story|>.
        opens = [
            bool(t.strip()) and (t.strip()[0].isupper() or t.strip()[0] in "\"'") for t in texts
        ]
        self.bad_story_start = ~torch.tensor(opens, dtype=torch.bool)
        self.bad_story_start[self.eos_id] = True
        self.sentence_end_ids: list[int] = [
            i for i, t in enumerate(texts) if t.strip() in {".", "!", "?", '."', '!"', '?"'}
        ]
        self._tries: dict[str, KeywordTrie] = {}

    def trie(self, keyword: str) -> KeywordTrie:
        """Token trie for a keyword (cached)."""
        if keyword not in self._tries:
            self._tries[keyword] = self._build_trie(keyword)
        return self._tries[keyword]

    def _build_trie(self, keyword: str) -> KeywordTrie:
        forms = keyword_surface_forms(keyword)
        trie = KeywordTrie(
            keyword=keyword,
            pattern=keyword_pattern(forms),
            lower_first=[],
            upper_first=[],
            max_chars=max(len(f) for f in forms),
        )
        lower_first: set[int] = set()
        upper_first: set[int] = set()
        for form in forms:
            for variant, bucket in (
                (form, lower_first),
                (form[:1].upper() + form[1:], upper_first),
            ):
                ids = tuple(self.tokenizer.encode(" " + variant, add_special_tokens=False))
                if not ids or self.tokenizer.decode(list(ids)).strip() != variant:
                    continue
                bucket.add(ids[0])
                for depth in range(1, len(ids)):
                    trie.children.setdefault(ids[:depth], set()).add(ids[depth])
                trie.terminals.add(ids)
        trie.lower_first = sorted(lower_first)
        trie.upper_first = sorted(upper_first - lower_first)
        if not trie.lower_first:
            logger.warning("keyword %r cannot be spelled by the tokenizer", keyword)
        return trie


def _token_id(tokenizer: Any, token: str, fallback: int | None = None) -> Any:
    token_id = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token_id", None)
    if token_id is None or (unk is not None and token_id == unk and token != tokenizer.unk_token):
        return fallback
    return int(token_id)


def token_tables(tokenizer: Any, vocab_size: int | None = None) -> TokenTables:
    """Tables for a tokenizer, cached on the tokenizer object (building costs ~1 s for 50k)."""
    cached = getattr(tokenizer, "_bedtime_token_tables", None)
    size = max(int(vocab_size or 0), len(tokenizer))
    if cached is not None and cached.vocab_size == size:
        return cached
    tables = TokenTables(tokenizer, size)
    with contextlib.suppress(AttributeError):
        tokenizer._bedtime_token_tables = tables
    return tables


# --------------------------------------------------------------------------- the guide


@dataclass
class RowState:
    """Where one story stands: phase, text so far, keywords satisfied, word being forced."""

    tries: list[KeywordTrie]
    in_story: bool
    satisfied: list[bool]
    story_text: str = ""
    story_tokens: int = 0
    title_tokens: int = 0
    forcing: KeywordTrie | None = None
    node: tuple[int, ...] = ()
    boundary_next: bool = False
    finished: bool = False
    generated: int = 0  # every token sampled for this row (title, markers, story)
    forced_tokens: int = 0  # tokens whose choice the guide restricted (diagnostics)
    keyword_steps: dict[str, int] = field(default_factory=dict)  # where each keyword landed

    #: Keyword in the text *and* a sentence end after it: safe from the final sentence cut.
    confirmed: list[bool] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return [i for i, done in enumerate(self.satisfied) if not done]

    @property
    def unconfirmed(self) -> bool:
        return not all(self.confirmed)


class KeywordGuide:
    """The keyword schedule for a batch of stories (one :class:`RowState` per row)."""

    def __init__(
        self,
        tables: TokenTables,
        keyword_sets: Sequence[Sequence[str]],
        settings: SamplingSettings,
        schedule: KeywordSchedule | None = None,
        in_story: Sequence[bool] | None = None,
        enforce: bool = True,
    ) -> None:
        self.tables = tables
        self.settings = settings
        self.schedule = schedule or KeywordSchedule()
        self.enforce = enforce
        starts = list(in_story) if in_story is not None else [False] * len(keyword_sets)
        self.rows = [
            RowState(
                tries=[tables.trie(k) for k in dict.fromkeys(keywords) if k.strip()],
                in_story=starts[i],
                satisfied=[False] * len(list(dict.fromkeys(k for k in keywords if k.strip()))),
                confirmed=[False] * len(list(dict.fromkeys(k for k in keywords if k.strip()))),
            )
            for i, keywords in enumerate(keyword_sets)
        ]

    # -- observing sampled tokens

    def observe(self, row: int, token_id: int) -> None:
        """Advance a row's state with the token just sampled for it."""
        state = self.rows[row]
        tables = self.tables
        if state.finished:
            return
        state.generated += 1
        if token_id == tables.eos_id:
            state.finished = True
            return
        if not state.in_story:
            if token_id == tables.story_id:
                state.in_story = True
            else:
                state.title_tokens += 1
            return
        text = tables.texts[token_id] if token_id < len(tables.texts) else ""
        state.story_text += text
        state.story_tokens += 1
        state.boundary_next = False
        if state.forcing is not None:
            state.node = (*state.node, token_id)
            self._after_forced_token(state)
        elif self.enforce:
            for index in state.missing:
                trie = state.tries[index]
                if (token_id in trie.lower_first or token_id in trie.upper_first) and (
                    self._bias(state, index) > 0
                ):
                    state.forcing, state.node = trie, (token_id,)
                    self._after_forced_token(state)
                    break
        tail = state.story_text[-(len(text) + 4) :]
        if _CLOSED_SENTENCE.search(tail):
            state.confirmed = list(state.satisfied)  # a sentence end after every keyword so far
        self._update_satisfied(state, len(text))

    def _after_forced_token(self, state: RowState) -> None:
        trie = state.forcing
        assert trie is not None
        if state.node in trie.children:
            return  # more of the word to spell (or an optional plural ending)
        if state.node in trie.terminals:
            state.boundary_next = True
        state.forcing, state.node = None, ()

    def _update_satisfied(self, state: RowState, new_chars: int) -> None:
        if all(state.satisfied):
            return
        text = state.story_text
        for index in state.missing:
            trie = state.tries[index]
            window = text[max(0, len(text) - new_chars - trie.max_chars - 2) :]
            if trie.pattern.search(window):
                state.satisfied[index] = True
                state.keyword_steps[trie.keyword] = state.story_tokens

    # -- shaping the next distribution

    def _bias(self, state: RowState, index: int) -> float:
        """Bias for keyword ``index``'s first tokens at this point of the story."""
        sched, target = self.schedule, max(1, self.settings.target_new_tokens)
        count = max(1, len(state.tries))
        begin = target * (sched.start + sched.spread * index / count)
        full = begin + max(1.0, sched.ramp * target)
        step = state.story_tokens
        if step < begin:
            return 0.0
        if step < full:
            return sched.max_bias * (step - begin) / (full - begin)
        return sched.max_bias + sched.bias_per_token_after_ramp * (step - full)

    def _hard_deadline(self, state: RowState) -> bool:
        room = 6 * len(state.missing) + 8
        limit = self.schedule.hard_deadline * self.settings.max_new_tokens - room
        return state.generated >= limit

    def adjust(self, row: int, scores: torch.Tensor) -> None:
        """Edit one row's logits in place (call after penalties, before temperature/top-k/p)."""
        state = self.rows[row]
        tables = self.tables
        if state.finished:
            return
        if not state.in_story:
            scores.masked_fill_(tables.banned_in_title, NEG_INF)
            scores[tables.eos_id] = NEG_INF
            if state.title_tokens >= self.schedule.title_max_tokens and tables.story_id is not None:
                _only(scores, [tables.story_id])
            return
        scores.masked_fill_(tables.banned_in_story, NEG_INF)
        if state.story_tokens == 0:
            _keep(scores, ~tables.bad_story_start)
            return
        if state.story_tokens < self.settings.min_story_tokens and self._tokens_left(state) > 1:
            scores[tables.eos_id] = NEG_INF
        if state.forcing is not None or state.boundary_next:
            state.forced_tokens += 1
        if state.forcing is not None:
            allowed = sorted(state.forcing.children.get(state.node, ()))
            if state.node in state.forcing.terminals:
                # A full form already: the plural ending or any word boundary may follow.
                boundary = ~tables.word_continuation
                boundary[tables.eos_id] = False
                keep = boundary.clone()
                keep[allowed] = True
                _keep(scores, keep)
            else:
                _only(scores, allowed)
            return
        missing = state.missing
        if state.boundary_next:
            scores.masked_fill_(tables.word_continuation, NEG_INF)
            if missing:
                scores[tables.eos_id] = NEG_INF
            if torch.isinf(scores).all():  # pragma: no cover - degenerate vocab
                scores[tables.eos_id] = 0.0
            return
        if missing and self.enforce:
            scores[tables.eos_id] = NEG_INF
            capital = not state.story_text.strip() or bool(_SENTENCE_END.search(state.story_text))
            if self._hard_deadline(state):
                state.forced_tokens += 1
                firsts: list[int] = []
                for index in missing:
                    trie = state.tries[index]
                    firsts += trie.upper_first if capital and trie.upper_first else trie.lower_first
                if firsts:
                    _only(scores, firsts)
                return
            for index in missing:
                bias = self._bias(state, index)
                if bias <= 0:
                    continue
                trie = state.tries[index]
                ids = trie.upper_first if capital and trie.upper_first else trie.lower_first
                if ids:
                    scores[ids] = _finite(scores[ids]) + bias
            return
        if self.enforce and state.unconfirmed:
            # A keyword is in but its sentence is not finished: the final cut at the last full
            # sentence would drop it, so no end yet, and close the sentence if room runs out.
            left = self._tokens_left(state)
            ids = tables.sentence_end_ids
            if _SENTENCE_END.search(state.story_text):
                if left <= 1:  # ends on "...the dragon slept." with no room: end it here
                    _only(scores, [tables.eos_id])
                return  # ending right after the full stop keeps the sentence
            scores[tables.eos_id] = NEG_INF
            if ids and left <= 2:
                _only(scores, ids)
            elif ids and left <= self.schedule.wrap_up_tokens:
                scores[ids] = _finite(scores[ids]) + self.schedule.wrap_up_bias
            return
        # Every keyword is in: help the story end at a sentence end once it is long enough.
        over = state.story_tokens - self.settings.target_new_tokens
        if over <= 0:
            return
        sched = self.schedule
        at_sentence_end = bool(_SENTENCE_END.search(state.story_text))
        if at_sentence_end:
            bias = min(sched.end_bias_max, sched.end_bias_per_token * over)
            if self._tokens_left(state) <= sched.wrap_up_tokens:
                bias = sched.end_bias_max * 2
            scores[tables.eos_id] = _finite(scores[tables.eos_id]) + bias
        elif self._tokens_left(state) <= sched.wrap_up_tokens and tables.sentence_end_ids:
            # Out of room mid-sentence: finish the sentence so the cut loses nothing.
            ids = tables.sentence_end_ids
            scores[ids] = _finite(scores[ids]) + sched.wrap_up_bias

    def _tokens_left(self, state: RowState) -> int:
        return self.settings.max_new_tokens - state.generated


def _finite(values: torch.Tensor) -> torch.Tensor:
    """-inf logits (banned by n-gram rules) come back at a low finite value before a boost."""
    return torch.where(torch.isinf(values), torch.full_like(values, -30.0), values)


def _only(scores: torch.Tensor, allowed: Sequence[int]) -> None:
    """Keep only ``allowed`` (their relative logits preserved; revived if all were banned)."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[list(allowed)] = True
    _keep(scores, keep)


def _keep(scores: torch.Tensor, keep: torch.Tensor) -> None:
    kept = scores[keep]
    if kept.numel() and torch.isinf(kept).all():
        scores[keep] = 0.0
    scores.masked_fill_(~keep, NEG_INF)


class KeywordLogitsProcessor(LogitsProcessor):
    """Drop-in for ``model.generate(logits_processor=[...])`` (fixed batch, sampling or greedy).

    Note that ``generate`` runs its top-k/top-p warpers *before* custom processors, so the boost
    cannot pull a keyword into the nucleus there; :func:`sample_batch` applies the right order.
    """

    def __init__(
        self,
        tokenizer: Any,
        keyword_sets: Sequence[Sequence[str]],
        settings: SamplingSettings,
        schedule: KeywordSchedule | None = None,
        vocab_size: int | None = None,
        prompt_in_story: Sequence[bool] | None = None,
    ) -> None:
        self.tables = token_tables(tokenizer, vocab_size)
        self.guide = KeywordGuide(self.tables, keyword_sets, settings, schedule, prompt_in_story)
        self._seen: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        length = input_ids.shape[1]
        if self._seen is None:
            self._seen = length
        for position in range(self._seen, length):
            for row in range(input_ids.shape[0]):
                self.guide.observe(row, int(input_ids[row, position]))
        self._seen = length
        scores = scores.clone()
        for row in range(scores.shape[0]):
            self.guide.adjust(row, scores[row])
        return scores


# --------------------------------------------------------------------------- batch sampling


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
    settings: SamplingSettings | None = None,
    schedule: KeywordSchedule | None = None,
    enforce_keywords: bool = True,
    seed: int | None = None,
    deadline: float | None = None,
) -> list[RawGeneration]:
    """Sample one story per prompt with left-padded batched decoding and the keyword guide.

    ``enforce_keywords=False`` gives the reference behaviour (keywords only in the prompt), with
    the same loop and settings. ``deadline`` (a ``time.monotonic()`` value) stops early; rows
    still running then come back unfinished.
    """
    settings = settings or SamplingSettings()
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
    guide = KeywordGuide(tables, keyword_sets, settings, schedule, in_story, enforce_keywords)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed if seed is not None else int(time.time_ns() % (2**31)))
    outputs: list[list[int]] = [[] for _ in prompts]
    ngrams: list[dict[tuple[int, ...], set[int]]] = [{} for _ in prompts]
    seen: torch.Tensor | None = None
    if settings.repetition_penalty != 1.0:
        seen = torch.zeros(
            (len(prompts), int(model.config.vocab_size)), dtype=torch.bool, device=device
        )
    active = list(range(len(prompts)))
    n = settings.no_repeat_ngram_size

    from transformers import DynamicCache

    cache = DynamicCache()
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = _forward(model, cache, input_ids, attention, positions)
        cache = _cache_of(out, cache)
        logits = out.logits[:, -1, :].float()
        next_pos = positions[:, -1] + 1
        for _step in range(settings.max_new_tokens):
            scores = logits
            if scores.shape[1] > tables.vocab_size:
                scores[:, tables.vocab_size :] = NEG_INF
            if seen is not None:
                # Generated tokens only (the prompt's keywords must not be penalised).
                penalty = settings.repetition_penalty
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
            next_tokens = _sample(scores, settings, generator)
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


def _sample(scores: torch.Tensor, settings: SamplingSettings, generator: torch.Generator) -> Any:
    """Temperature, top-k, top-p, then one multinomial draw per row (greedy at temperature 0).

    With top-k on, everything happens on the k best logits per row ([B, k] instead of
    [B, vocab]): sorting and sampling the full vocabulary was a fifth of the step time.
    """
    if settings.temperature <= 0:
        return scores.argmax(-1)
    if 0 < settings.top_k < scores.shape[-1]:
        values, indices = torch.topk(scores, settings.top_k, dim=-1)  # sorted, descending
    else:
        values, indices = torch.sort(scores, descending=True, dim=-1)
    values = values / settings.temperature
    if 0 < settings.top_p < 1.0:
        probs = values.softmax(-1)
        remove = probs.cumsum(-1) - probs > settings.top_p  # always keeps the best token
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


# --------------------------------------------------------------------------- story generator


def _ct2_dir(model_dir: Path) -> Path | None:
    """The CTranslate2 export of a model directory (``<model_dir>/ct2``), if there is one."""
    candidate = Path(model_dir) / "ct2"
    return candidate if (candidate / "model.bin").exists() else None


def convert_to_ct2(model_dir: Path, out_dir: Path, quantization: str = "int8") -> Path:
    """Convert a HF model directory to CTranslate2 (int8 by default): seconds for our sizes."""
    from generator.export import export_ct2

    export_ct2(model_dir, quantization=quantization, out_dir=out_dir)
    fix_ct2_config(Path(out_dir))
    return Path(out_dir)


def cached_ct2_export(model_dir: Path) -> Path:
    """An int8 CTranslate2 export of a model without ``<model_dir>/ct2``, converted once.

    Kept under the temp directory, keyed by the model path and weights' mtime, so a second
    process (or the next cron run) reuses it; the conversion takes seconds for our sizes.
    """
    import hashlib
    import tempfile

    model_dir = Path(model_dir).resolve()
    weights = [p for p in model_dir.iterdir() if p.suffix in {".safetensors", ".bin"}]
    stamp = "|".join(f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(weights))
    key = hashlib.sha1(f"{model_dir}|{stamp}".encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / "bedtime-ct2" / key / "ct2"
    if not (target / "model.bin").exists():
        logger.info("converting %s to CTranslate2 int8 in %s", model_dir, target)
        convert_to_ct2(model_dir, target)
    return target


def fix_ct2_config(ct2_dir: Path) -> None:
    """CT2 4.8 writes ``"unk_token": null`` for tokenizers without one and then cannot load
    the model ("type must be string, but is null"); point it at the end token instead."""
    import json

    from generator.artifacts import atomic_write_text

    path = Path(ct2_dir) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for key in ("unk_token", "bos_token"):
        if config.get(key) is None:
            config[key] = config.get("eos_token") or END_TOKEN
            changed = True
    if changed:
        atomic_write_text(path, json.dumps(config, indent=2) + "\n")
        logger.info("patched %s (null special tokens)", path)


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
        config: Any = None,
        engine: str = "auto",
        require_human_review: bool = False,
        threads: int | None = None,
        adaptive: bool = True,
        insert_rounds: int = 3,
    ) -> None:
        from generator.artifacts import load_model
        from generator.assemble import StoryConfig

        if threads:
            torch.set_num_threads(threads)
        self.loaded = load_model(model_path)
        self.model = self.loaded.model
        self.tokenizer = self.loaded.tokenizer
        self.meta = self.loaded.meta
        self.model_name = model_display_name(self.loaded.path, self.meta)
        self.config = self._fit_to_model(config or StoryConfig())
        self.require_human_review = require_human_review
        self.tables = token_tables(self.tokenizer, getattr(self.model.config, "vocab_size", None))
        self.ct2: Any = None
        if engine in {"ct2", "auto"}:
            try:
                ct2_path = _ct2_dir(self.loaded.path) or cached_ct2_export(self.loaded.path)
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

    def _fit_to_model(self, config: Any) -> Any:
        """Keep stories inside the context the model was trained on (``block_size``)."""
        block = _find_key(self.meta, "block_size") or 0
        if block <= 0:
            return config
        cap = max(32, block - 20)
        if config.max_new_tokens <= cap:
            return config
        from dataclasses import replace

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
        config: Any = None,
    ) -> list[Any]:
        """One :class:`generator.assemble.GeneratedStory` per keyword set (same order)."""
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

    def _prompts(self, keyword_sets: Sequence[Sequence[str]], config: Any = None) -> list[str]:
        from generator.assemble import story_prompt

        return [story_prompt(list(k), config or self.config) for k in keyword_sets]

    def _assemble(self, raw: RawGeneration, keywords: Sequence[str], config: Any) -> Any:
        from generator.assemble import assemble_story

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
        config: Any,
    ) -> list[Any]:
        raws = sample_batch(
            self.model,
            self.tokenizer,
            self._prompts(keyword_sets, config),
            keyword_sets,
            config.sampling(),
            config.schedule(),
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
        self, keyword_sets: Sequence[Sequence[str]], seed: int | None, config: Any
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
            **_ct2_sampling_options(config),
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
        config: Any,
        deadline: float | None = None,
    ) -> list[Any]:
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
        config: Any,
    ) -> list[RawGeneration | None]:
        """Rewind-and-insert, the CT2 form of the keyword guarantee (no logits hook in CT2).

        For each story, the first missing keyword goes where the model itself finds it most
        likely: one ``forward_batch`` pass scores the keyword's first token at every word start
        inside that keyword's staggered window (same idea as the HF schedule), the story is cut
        there, the keyword spelled, and CT2 samples the rest of the story from that point.
        None for rows where it cannot (no story marker, too short): the caller falls back.
        """
        import numpy as np

        tables, sched = self.tables, config.schedule()
        plans: list[tuple[int, list[int]] | None] = []
        for raw, lacking, keywords in zip(raws, missing, keyword_sets, strict=True):
            present = [k for k in keywords if k not in lacking]
            plans.append(self._plan_insertion(raw, lacking[0], list(keywords), present, sched, np))
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
            **_ct2_sampling_options(config),
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

    def _boundary_token(self, ids: list[int], config: Any, np: Any, rng: Any) -> int:
        """Sample the next token among those that do not continue the current word."""
        return self._sample_restricted(ids, config, np, rng, self.tables.word_continuation)

    def _sample_restricted(
        self, ids: list[int], config: Any, np: Any, rng: Any, banned_mask: torch.Tensor
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
        sched: Any,
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
        lo = int(len(story) * (sched.start + sched.spread * slot / count))
        hi = int(len(story) * (sched.start + sched.spread * (slot + 1) / count + sched.ramp))
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
            capital = not text_before.strip() or bool(_SENTENCE_END.search(text_before))
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


def _ct2_sampling_options(config: Any) -> dict[str, Any]:
    """The sampling settings every CTranslate2 call shares, so both paths sample alike."""
    return {
        "sampling_topk": config.top_k,
        "sampling_topp": config.top_p,
        "sampling_temperature": config.temperature,
        "repetition_penalty": config.repetition_penalty,
        "no_repeat_ngram_size": config.no_repeat_ngram_size,
        "include_prompt_in_result": False,
        "end_token": END_TOKEN,
        "return_end_token": True,
    }

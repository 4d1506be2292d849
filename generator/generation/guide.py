"""The keyword guide: every requested keyword appears in the story, placed naturally.

transformers 5.x dropped constrained beam search (``force_words_ids`` needs hub remote code) and
beam search would not sample anyway, so the guarantee is a logits schedule on top of ordinary
temperature / top-k / top-p sampling:

* a missing keyword's *first* token (leading-space BPE variants of every surface form: "dragon",
  "dragons", capitalised after a sentence end) gets a bias that grows as the story budget is used;
  keywords are staggered so they do not all land in the first sentence;
* once a boosted first token is sampled the rest of the word is forced through a token trie
  (:class:`KeywordTrie`), then a word boundary is forced so "dragon" cannot become "dragonfly";
* end-of-story is forbidden while any keyword is missing, and past a hard deadline only the
  keyword's first tokens are allowed (the guarantee); after that, end-of-story is nudged at
  sentence ends so stories still finish properly.

The schedule lives in :class:`KeywordGuide` (its knobs are the ``keyword_*``/``end_*``/
``wrap_up_*`` fields of :class:`generator.generation.config.StoryConfig`), used by
:class:`KeywordLogitsProcessor` (drop-in for ``model.generate(logits_processor=...)``) and by
:func:`generator.generation.sampling.sample_batch`. :class:`TokenTables` are the per-tokenizer
lookups both need.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessor

from generator.generation.assemble import keyword_pattern, keyword_surface_forms
from generator.generation.config import StoryConfig
from generator.prompting import END_TOKEN, KEYWORD_TOKEN, STORY_TOKEN, TITLE_TOKEN

logger = logging.getLogger(__name__)

NEG_INF = float("-inf")
SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s*$")
#: A sentence end the final cut (``assemble.cut_at_last_sentence``) will keep.
CLOSED_SENTENCE = re.compile(r"[.!?][\"')\]]*\s")


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
        config: StoryConfig | None = None,
        in_story: Sequence[bool] | None = None,
        enforce: bool = True,
    ) -> None:
        self.tables = tables
        self.config = config or StoryConfig()
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
        if CLOSED_SENTENCE.search(tail):
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
        config, target = self.config, max(1, self.config.target_new_tokens)
        count = max(1, len(state.tries))
        begin = target * (config.keyword_start + config.keyword_spread * index / count)
        full = begin + max(1.0, config.keyword_ramp * target)
        step = state.story_tokens
        if step < begin:
            return 0.0
        if step < full:
            return config.keyword_max_bias * (step - begin) / (full - begin)
        return config.keyword_max_bias + config.keyword_bias_after_ramp * (step - full)

    def _hard_deadline(self, state: RowState) -> bool:
        room = 6 * len(state.missing) + 8
        limit = self.config.keyword_hard_deadline * self.config.max_new_tokens - room
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
            if state.title_tokens >= self.config.title_max_tokens and tables.story_id is not None:
                _only(scores, [tables.story_id])
            return
        scores.masked_fill_(tables.banned_in_story, NEG_INF)
        if state.story_tokens == 0:
            _keep(scores, ~tables.bad_story_start)
            return
        if state.story_tokens < self.config.min_story_tokens and self._tokens_left(state) > 1:
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
            capital = not state.story_text.strip() or bool(SENTENCE_END.search(state.story_text))
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
            if SENTENCE_END.search(state.story_text):
                if left <= 1:  # ends on "...the dragon slept." with no room: end it here
                    _only(scores, [tables.eos_id])
                return  # ending right after the full stop keeps the sentence
            scores[tables.eos_id] = NEG_INF
            if ids and left <= 2:
                _only(scores, ids)
            elif ids and left <= self.config.wrap_up_tokens:
                scores[ids] = _finite(scores[ids]) + self.config.wrap_up_bias
            return
        # Every keyword is in: help the story end at a sentence end once it is long enough.
        over = state.story_tokens - self.config.target_new_tokens
        if over <= 0:
            return
        sched = self.config
        at_sentence_end = bool(SENTENCE_END.search(state.story_text))
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
        return self.config.max_new_tokens - state.generated


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
    cannot pull a keyword into the nucleus there; ``generation.sampling.sample_batch`` applies the
    right order.
    """

    def __init__(
        self,
        tokenizer: Any,
        keyword_sets: Sequence[Sequence[str]],
        config: StoryConfig | None = None,
        vocab_size: int | None = None,
        prompt_in_story: Sequence[bool] | None = None,
    ) -> None:
        self.tables = token_tables(tokenizer, vocab_size)
        self.guide = KeywordGuide(self.tables, keyword_sets, config, prompt_in_story)
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

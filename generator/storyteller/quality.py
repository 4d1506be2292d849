"""Judging a storyteller candidate: hard acceptance rules, then a score for best-of-N.

Torch-free so the rules are unit-tested on plain strings. Hard rules (any one rejects):
every keyword appears (any inflection) in a sensible noun role in the story itself, no made-up
words (lemminflect's English lexicon, names excepted), character names that keep their spelling
(names.py), no repeated sentences, a proper ending
(the model stopped by itself on a full sentence), the shape of a story rather than an assistant's
answer, not ending on a question (shape.py), a length inside the request's range, and the
safety gate. Among accepted candidates the best is the one the model itself finds most fluent
(mean log-probability per token), nudged by keyword mentions, lexical variety and an ending
that winds down.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from generator.generation.words import made_up_words
from generator.storyteller.names import name_collisions, name_drift
from generator.storyteller.prompts import parse_reply
from generator.storyteller.shape import sentences, shape_problems, wound_up_ending

_WORD_RE = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?")
#: Words before a noun that show it is used as one: "the dragon", "her little boat", "two owls".
_NOUN_LEAD_WORDS = (
    "a an the his her my their our your its this that these those some every each no one two "
    "three four five many few little big small tiny old young friendly kind gentle sleepy "
    "wise brave happy shy golden silver soft bright magic magical of with"
)
_NOUN_LEADS = frozenset(_NOUN_LEAD_WORDS.split())


@dataclass(frozen=True)
class Candidate:
    """One sampled reply: its text, whether the model ended it, and how sure it was."""

    reply: str
    finished: bool
    mean_logprob: float | None = None
    tokens: int = 0


@dataclass
class Judgement:
    title: str | None
    text: str
    problems: list[str] = field(default_factory=list)
    score: float = float("-inf")
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return not self.problems


def repeated_sentences(text: str) -> int:
    """How many sentences are word-for-word repeats of an earlier one (loops)."""
    seen = Counter(" ".join(_WORD_RE.findall(s.lower())) for s in sentences(text))
    return sum(c - 1 for key, c in seen.items() if key and len(key.split()) >= 4)


def keyword_mentions(keyword: str, text: str) -> list[int]:
    """Start offsets of every mention of ``keyword`` in any inflection."""
    from generator.generation.assemble import keyword_regex

    pattern = keyword_regex(" ".join(keyword.lower().split()))
    return [match.start() for match in pattern.finditer(text + " ")]


def keyword_in_role(keyword: str, text: str) -> bool:
    """A mention where the keyword reads as a noun: after a determiner, adjective or "of",
    as a capitalised name, or in the plural — not glued into another word."""
    lower = text.lower()
    for start in keyword_mentions(keyword, text):
        before = _WORD_RE.findall(lower[max(0, start - 60) : start])[-3:]
        if any(word in _NOUN_LEADS for word in before):
            return True
        if text[start].isupper():  # "Dragon smiled." — a character's name
            return True
        word = _WORD_RE.match(lower[start:])
        if word and word.group(0) != keyword.lower():  # an inflected form: "owls", "mice"
            return True
    return False


def _named_after_itself(keyword: str, text: str) -> bool:
    """'a dragon named dragon': the keyword dropped in where a name should be."""
    forms = "|".join(re.escape(k) for k in {keyword.lower(), keyword.lower() + "s"})
    return re.search(rf"\b(?:named|called)\s+(?:{forms})\b", text) is not None


_CAPITALISED_RE = re.compile(r"\b[A-Z][a-z]+\b")
_CREDIT_RE = re.compile(r"\bby\s+(?!the\b)[A-Z]|[\"\u201c\u201d]|\b(?i:series)\b")


def title_problems(title: str, names: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """A title a parent would read out: short, no author credit or quote marks ("The Apple
    by Sarah B.", 'The Pancake" by ...'), no stutter ("Story Story"), no made-up words.
    ``names``: the story's character names, which a title may use ("Mia's Kite")."""
    words = title.split()
    problems = []
    if len(words) > 12:
        problems.append("title too long")
    if _CREDIT_RE.search(title):
        problems.append("title credits an author or a series")
    if any(a.lower() == b.lower() for a, b in pairwise(words)):
        problems.append("title repeats a word")
    plain = " ".join(w for w in words if re.sub(r"['\u2019]s$", "", w.strip(".,!?:;")) not in names)
    invented = made_up_words(plain.lower())
    if invented:
        problems.append(f"made-up words in the title: {', '.join(invented)}")
    return problems


def judge(
    candidate: Candidate,
    keywords: Sequence[str],
    *,
    min_words: int,
    max_words: int,
    max_made_up: int = 0,
) -> Judgement:
    """Apply the hard rules and compute the best-of-N score."""
    from generator.generation.assemble import clean_text, cut_at_last_sentence, quality_metrics
    from generator.safety import check_story

    parsed = parse_reply(candidate.reply)
    text, was_cut = cut_at_last_sentence(clean_text(parsed.text))
    problems: list[str] = []
    metrics = quality_metrics(text)
    invented = made_up_words(text)
    repeats = repeated_sentences(text)
    drift = name_drift(text)
    collisions = name_collisions(text)
    mentions = {k: len(keyword_mentions(k, text)) for k in keywords}
    metrics.update(
        finished=candidate.finished,
        cut=was_cut,
        made_up_words=invented[:10],
        repeated_sentences=repeats,
        name_drift=drift[:5],
        name_collisions=collisions[:5],
        keyword_mentions=mentions,
        keywords_missing=[k for k, n in mentions.items() if n == 0],
        mean_logprob=candidate.mean_logprob,
        tokens=candidate.tokens,
    )
    if not candidate.finished or was_cut:
        problems.append("unfinished (no proper ending)")
    if metrics["words"] < min_words:
        problems.append(f"too short ({metrics['words']} words < {min_words})")
    if metrics["words"] > max_words:
        problems.append(f"too long ({metrics['words']} words > {max_words})")
    missing = [k for k in keywords if not keyword_in_role(k, text)]
    if missing:
        problems.append(f"missing keywords: {', '.join(missing)}")
    misnamed = [k for k in keywords if _named_after_itself(k, text)]
    if misnamed:
        problems.append(f"keyword used as a lower-case name: {', '.join(misnamed)}")
    if len(invented) > max_made_up:
        problems.append(f"made-up words: {', '.join(sorted(set(invented))[:5])}")
    if drift:
        problems.append(f"names drift: {', '.join(drift[:3])}")
    if collisions:
        problems.append(f"one name for two characters: {', '.join(collisions[:3])}")
    if repeats:
        problems.append(f"repeats itself ({repeats} repeated sentences)")
    if metrics["repetition_ratio"] > 0.08:
        problems.append(f"repetitive (repeated 4-grams {metrics['repetition_ratio']:.2f})")
    shape = shape_problems(text)
    wound_up = wound_up_ending(text)
    metrics.update(shape=shape, wound_up_ending=wound_up)
    problems.extend(shape)
    if not parsed.title:
        problems.append("no title")
    else:
        # A title may use a name the story uses (the text rule allows capitalised names too).
        problems.extend(title_problems(parsed.title, set(_CAPITALISED_RE.findall(text))))
    verdict = check_story(parsed.title or "", text)
    if not verdict.ok:
        problems.append(str(verdict.reason))
    metrics["safety"] = verdict.as_dict()
    score = candidate.mean_logprob if candidate.mean_logprob is not None else -2.0
    score += 0.05 * min(3, sum(min(n, 3) for n in mentions.values()))
    score += 0.5 * metrics["distinct_2"]
    if wound_up:
        score -= 0.3  # a settled ending is worth more than a point of fluency
    return Judgement(parsed.title, text, problems, score, metrics)


def judge_stored(
    title: str, text: str, keywords: Sequence[str], *, min_words: int = 0, max_words: int = 10**6
) -> Judgement:
    """Re-apply today's rules to a story written earlier (after the rules change)."""
    return judge(
        Candidate(f"Title: {title}\n\n{text}", finished=True),
        keywords,
        min_words=min_words,
        max_words=max_words,
    )


def best_of(judgements: Sequence[Judgement], by_reader: bool = False) -> Judgement:
    """The highest-scoring accepted judgement, else the one with the fewest problems.
    ``by_reader``: the accepted one the reader model scores highest (``metrics["reader_score"]``,
    see :mod:`.reader_model`), the judge's score breaking ties."""
    accepted = [j for j in judgements if j.accepted]
    if accepted and by_reader:
        return max(accepted, key=lambda j: (j.metrics.get("reader_score", -1.0), j.score))
    if accepted:
        return max(accepted, key=lambda j: j.score)
    return min(judgements, key=lambda j: (len(j.problems), -j.score))

"""Story assembly: raw model output to a story fit to store (cleanup, title, checks, verdict).

Torch-free on purpose: the live path and the batch job import it before any model is loaded,
and the checks are unit-testable on plain strings. A story that fails any check is kept as
``rejected`` with the reason (useful to tune the generator), never served; only stories passing
every check are ``approved`` (``pending`` instead when a human must review them).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from db.generation_jobs import APPROVED, PENDING, REJECTED
from generator.generation.config import StoryConfig
from generator.generation.words import known_word
from generator.prompting import (
    STORY_TOKEN,
    TITLE_TOKEN,
    build_prompt,
    format_keywords,
    parse_generation,
)

logger = logging.getLogger(__name__)

_SENTENCE_END_RE = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s|$)")
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)?")
_SMALL_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "by",
        "from",
    }
)


@dataclass
class GeneratedStory:
    """A story ready for the store (``to_draft``) or for the live path to read out."""

    title: str
    text: str
    keywords: tuple[str, ...]
    status: str  # approved | pending | rejected
    rejection_reason: str | None = None
    prompt: str = ""
    model_name: str | None = None
    finished: bool = False
    quality: dict[str, Any] = field(default_factory=dict)
    safety: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def servable(self) -> bool:
        return self.status == APPROVED

    @property
    def content_hash(self) -> str:
        """Same normalisation idea as the store's idempotency: whitespace/case-insensitive."""
        return content_hash(self.title, self.text)

    def to_draft(self, model_id: int | None = None, locale: str = "en-US") -> Any:
        """A ``db.store.StoryDraft`` (imports the db package)."""
        from db.store import StoryDraft

        return StoryDraft(
            title=self.title,
            text=self.text,
            keywords=list(self.keywords),
            locale=locale,
            source="generated",
            review_status=self.status,
            model_id=model_id,
            prompt=self.prompt,
            requested_keywords=list(self.keywords),
            safety_verdict=_short_verdict(self.safety),
            rejection_reason=self.rejection_reason,
            quality=self.quality,
            safety=dict(self.safety) or None,
        )

    def to_catalogue_record(self) -> dict[str, Any]:
        """One line of ``db/data/starter_catalogue.jsonl``."""
        return {
            "title": self.title,
            "text": self.text,
            "keywords": list(self.keywords),
            "source": "generated",
            "status": self.status,
            "model": self.model_name,
            "locale": "en-US",
        }


def _short_verdict(safety: dict[str, Any]) -> str | None:
    """The store keeps a short verdict string (200 chars): "ok" or the reason."""
    if not safety:
        return None
    return "ok" if safety.get("ok") else str(safety.get("reason") or "unsafe")[:200]


def content_hash(title: str, text: str) -> str:
    normalised = " ".join(f"{title}\n{text}".lower().split())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- keywords


@lru_cache(maxsize=4096)
def keyword_surface_forms(lemma: str) -> frozenset[str]:
    """All forms that count as the keyword ("mouse" -> {"mouse", "mice"})."""
    lemma = " ".join(lemma.lower().split())
    forms = {lemma}
    try:
        from db.keywords import surface_forms  # the store's inflection rules win
    except ImportError:  # pragma: no cover - db package not there (tests of this module alone)
        surface_forms = None
    if surface_forms is not None:
        try:
            forms |= {" ".join(f.lower().split()) for f in surface_forms(lemma) if f.strip()}
        except Exception:  # pragma: no cover - never let a store bug stop generation
            logger.exception("db.keywords.surface_forms failed for %r", lemma)
    head, _, last = lemma.rpartition(" ")
    try:
        from lemminflect import getAllInflections

        for values in getAllInflections(last, upos="NOUN").values():
            for value in values:
                forms.add(f"{head} {value}".strip())
    except ImportError:  # pragma: no cover
        forms.add(lemma + "s")
    return frozenset(forms)


def keyword_pattern(forms: Sequence[str] | frozenset[str] | set[str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of any form, followed by a non-letter character.

    Requiring the following character means "dragon" at the very end of the text does not count
    yet (the next token could still make it "dragonfly").
    """
    alternatives = "|".join(
        r"\s+".join(re.escape(part) for part in form.split())
        for form in sorted(forms, key=len, reverse=True)
    )
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?=[^A-Za-z0-9])", re.IGNORECASE)


def keyword_in_text(keyword: str, text: str) -> bool:
    """Final inclusion check used by assembly, benches and tests (same rule as the guide)."""
    return keyword_regex(keyword).search(text + " ") is not None


@lru_cache(maxsize=4096)
def keyword_regex(keyword: str) -> re.Pattern[str]:
    """Any inflection of the keyword as a whole word; shared by assembly and the judge."""
    return keyword_pattern(keyword_surface_forms(" ".join(keyword.lower().split())))


# --------------------------------------------------------------------------- text cleanup


def clean_text(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks, drop stray prompt markup."""
    # Control characters become spaces (deleting them could glue "kite\rm" into "kitem").
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text.replace("\r\n", "\n"))
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def cut_at_last_sentence(text: str) -> tuple[str, bool]:
    """Text up to its last complete sentence; second value False if nothing was cut."""
    stripped = text.rstrip()
    ends = list(_SENTENCE_END_RE.finditer(stripped))
    if not ends:
        return "", bool(stripped)
    end = ends[-1].end()
    return stripped[:end].rstrip(), end < len(stripped)


def keyword_title(keywords: Sequence[str]) -> str:
    """ "The Dragon and the Kite", "The Dragon, the Kite and the Moon", "A Bedtime Story"."""
    parts = [k.strip().title() for k in keywords if k.strip()]
    if not parts:
        return "A Bedtime Story"
    if len(parts) == 1:
        return f"The {parts[0]}"
    head = ", the ".join(parts[:-1])
    return f"The {head} and the {parts[-1]}"


def tidy_title(title: str | None, max_words: int) -> str | None:
    """Title-case a model title; None when empty, too long or not words."""
    if not title:
        return None
    title = title.strip().strip("\"'`*#:").strip()
    title = re.sub(r"\s+", " ", title).rstrip(".")
    words = title.split(" ")
    if not title or len(words) > max_words or not re.search(r"[A-Za-z]{2}", title):
        return None
    out = [
        w
        if (w.isupper() and len(w) > 1)
        else (w.lower() if i and w.lower() in _SMALL_WORDS else w[:1].upper() + w[1:])
        for i, w in enumerate(words)
    ]
    return " ".join(out)


# --------------------------------------------------------------------------- quality


def quality_metrics(text: str) -> dict[str, Any]:
    """Word count, distinct-1/2 and the share of repeated 4-grams (degeneration signals)."""
    words = [w.lower() for w in _WORD_RE.findall(text)]
    n = len(words)
    bigrams = list(itertools.pairwise(words))
    fourgrams = list(zip(words, words[1:], words[2:], words[3:], strict=False))
    repeated = sum(c - 1 for c in Counter(fourgrams).values() if c > 1)
    return {
        "words": n,
        "sentences": len(_SENTENCE_END_RE.findall(text)),
        "distinct_1": round(len(set(words)) / n, 4) if n else 0.0,
        "distinct_2": round(len(set(bigrams)) / len(bigrams), 4) if bigrams else 0.0,
        "repetition_ratio": round(repeated / len(fourgrams), 4) if fourgrams else 0.0,
        "unknown_words": round(unknown_word_ratio(text), 4),
    }


def unknown_word_ratio(text: str) -> float:
    """Share of lower-case words (names excluded) that no lexicon knows."""
    words = [
        w.lower()
        for w in _WORD_RE.findall(text.replace("\u2019", "'"))
        if w[0].islower() and w.isascii() and not w.isdigit()
    ]
    if not words:
        return 0.0
    return sum(not known_word(w) for w in words) / len(words)


def quality_problem(metrics: dict[str, Any], config: StoryConfig) -> str | None:
    """The first reason the text is not a usable story, or None."""
    if metrics["words"] < config.min_words:
        return f"too short ({metrics['words']} words < {config.min_words})"
    if metrics["words"] > config.max_words:
        return f"too long ({metrics['words']} words > {config.max_words})"
    if metrics["repetition_ratio"] > config.max_repetition_ratio:
        return f"repetitive (repeated 4-grams {metrics['repetition_ratio']:.2f})"
    if metrics["distinct_2"] < config.min_distinct_2:
        return f"degenerate (distinct-2 {metrics['distinct_2']:.2f})"
    if metrics["distinct_1"] < config.min_distinct_1:
        return f"degenerate (distinct-1 {metrics['distinct_1']:.2f})"
    if metrics.get("unknown_words", 0.0) > config.max_unknown_word_ratio:
        return f"gibberish ({100 * metrics['unknown_words']:.0f}% unknown words)"
    invented = metrics.get("made_up_words") or []
    if config.max_made_up_words is not None and len(invented) > config.max_made_up_words:
        return f"made-up words: {', '.join(sorted(set(invented))[:5])}"
    return None


def trim_to_max_words(text: str, max_words: int) -> str:
    """Cut an over-long story back to its last full sentence within ``max_words``."""
    for count, match in enumerate(_WORD_RE.finditer(text), start=1):
        if count > max_words:
            return cut_at_last_sentence(text[: match.start()])[0]
    return text


# --------------------------------------------------------------------------- assembly


def story_prompt(keywords: Sequence[str], config: StoryConfig | None = None) -> str:
    """The prompt for a story about ``keywords`` (see ``StoryConfig.title_in_prompt``)."""
    mode = (config or StoryConfig()).title_in_prompt
    if mode == "model":
        return build_prompt(list(keywords))
    if mode == "template":
        return build_prompt(list(keywords), keyword_title(keywords))
    if mode == "empty":
        return format_keywords(list(keywords)) + TITLE_TOKEN + STORY_TOKEN
    raise ValueError(f"title_in_prompt must be empty, template or model, not {mode!r}")


def prompt_title(prompt: str) -> str | None:
    """The title given in a prompt ("" for an empty one), None when the model writes it."""
    if not prompt.endswith(STORY_TOKEN) or TITLE_TOKEN not in prompt:
        return None
    return prompt.rsplit(TITLE_TOKEN, 1)[1][: -len(STORY_TOKEN)].strip()


def assemble_story(
    continuation: str,
    keywords: Sequence[str],
    config: StoryConfig | None = None,
    *,
    prompt: str | None = None,
    title: str | None = None,
    finished: bool | None = None,
    model_name: str | None = None,
    require_human_review: bool = False,
    seconds: float = 0.0,
) -> GeneratedStory:
    """Parse, clean and check one generation; the verdict is in ``status``/``rejection_reason``.

    ``continuation`` is what the model wrote after ``prompt`` (``build_prompt(keywords, title)``);
    ``title`` is the one given in the prompt, if any.
    """
    from generator.safety import check_story

    config = config or StoryConfig()
    keywords = tuple(dict.fromkeys(k for k in keywords if k.strip()))
    if title is None and prompt is not None:
        title = prompt_title(prompt)
    parsed = parse_generation(continuation, title=title)
    ended = parsed.finished if finished is None else finished
    text, was_cut = cut_at_last_sentence(clean_text(parsed.text))
    text = trim_to_max_words(text, config.max_words)
    chosen_title = (
        tidy_title(parsed.title, config.max_title_words) if parsed.title else None
    ) or keyword_title(keywords)
    metrics = quality_metrics(text)
    if config.max_made_up_words is not None:
        from generator.generation.words import made_up_words  # the word list loads lazily

        metrics["made_up_words"] = made_up_words(text)[:10]
    missing = [k for k in keywords if not keyword_in_text(k, text)]
    metrics.update(
        finished=ended,
        cut=was_cut,
        keywords_missing=missing,
        title_source="model" if chosen_title != keyword_title(keywords) else "template",
    )
    verdict = check_story(chosen_title, text)
    if not verdict.ok and metrics["title_source"] == "model":
        # An unsafe model title on a safe text: fall back to the keyword title.
        text_verdict = check_story("", text)
        if text_verdict.ok:
            chosen_title, verdict = (
                keyword_title(keywords),
                check_story(keyword_title(keywords), text),
            )
            metrics["title_source"] = "template"
    reason: str | None = None
    if not text:
        reason = "unfinished (no complete sentence)"
    elif config.require_finished and not ended:
        reason = "unfinished (the model did not end the story)"
    if reason is None:
        reason = quality_problem(metrics, config)
    if reason is None and missing:
        reason = f"missing keywords: {', '.join(missing)}"
    if reason is None and not verdict.ok:
        reason = verdict.reason
    status = REJECTED if reason is not None else PENDING if require_human_review else APPROVED
    if not text:
        # Rejected and nothing survived the cut: keep what the model wrote, for diagnosis.
        text = clean_text(parsed.text) or "(no text)"
    return GeneratedStory(
        title=chosen_title,
        text=text,
        keywords=keywords,
        status=status,
        rejection_reason=reason,
        prompt=prompt if prompt is not None else build_prompt(keywords, title),
        model_name=model_name,
        finished=ended,
        quality=metrics,
        safety=verdict.as_dict(),
        seconds=seconds,
    )

"""Offline keyword extraction: nouns of a story's title and text as canonical lemmas.

The reference used spaCy noun detection on titles (capped at 3, padded with a special token).
spaCy models cannot be downloaded here, so this uses lemminflect's lexicon (which ships its data)
plus context heuristics: a word counts as a noun when the lexicon lists it only as a noun, or when
it is listed as a noun and appears after a determiner/possessive in the text. Proper names
(capitalised mid-sentence, unknown to the lexicon) and very generic nouns are skipped. Missing
slots are filled with the most salient nouns of the text instead of a padding token.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")

DETERMINERS = frozenset(
    [
        "a",
        "an",
        "the",
        "his",
        "her",
        "my",
        "their",
        "our",
        "your",
        "its",
        "this",
        "that",
        "these",
        "those",
        "some",
        "every",
        "each",
        "no",
        "any",
        "another",
        "one",
        "two",
        "three",
        "little",
        "big",
        "old",
        "young",
        "tiny",
        "small",
        "great",
    ]
)
#: Nouns too generic to be what a story is "about".
GENERIC_NOUNS = frozenset(
    [
        "time",
        "day",
        "way",
        "thing",
        "something",
        "anything",
        "everything",
        "nothing",
        "one",
        "once",
        "lot",
        "bit",
        "while",
        "kind",
        "end",
        "part",
        "side",
        "place",
        "moment",
        "night",
        "morning",
        "evening",
        "today",
        "tomorrow",
        "yesterday",
        "someone",
        "anyone",
        "everyone",
        "nobody",
        "people",
        "person",
        "man",
        "woman",
        "other",
        "others",
        "year",
        "week",
        "hour",
        "minute",
        "second",
        "lesson",
        "story",
        "tale",
        "chapter",
        "book",
        "fairy",
        "page",
        "title",
        "word",
        "yes",
        "no",
        "mr",
        "mrs",
        "miss",
        "sir",
        "lady",
        "friend",
        "thank",
        "let",
        "back",
        "top",
        "front",
        "middle",
        "inside",
        "outside",
        "rest",
        "way",
        "idea",
        "fun",
        "help",
        "care",
        "look",
        "sound",
        "voice",
        "face",
        "head",
        "hand",
        "eye",
        "heart",
        "mind",
        "life",
        "name",
        "number",
        "kind",
        "sort",
        "matter",
        "reason",
        "course",
    ]
)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "there",
        "here",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "would",
        "could",
        "ought",
        "said",
        "says",
        "say",
        "not",
        "no",
        "nor",
    ]
)


@lru_cache(maxsize=65536)
def _lemmas(word: str) -> dict[str, tuple[str, ...]]:
    from lemminflect import getAllLemmas

    return dict(getAllLemmas(word))


def normalize_keyword(word: str) -> str:
    """Canonical keyword: lower-case singular lemma ("Foxes" -> "fox", "mice" -> "mouse").

    Uses the store's ``db.keywords.normalize_keyword`` when that module exists so the model and
    the catalogue agree; falls back to lemminflect.
    """
    try:
        from db.keywords import normalize_keyword as store_normalize  # type: ignore[import-not-found]
    except ImportError:
        store_normalize = None
    if store_normalize is not None:
        return str(store_normalize(word))
    return _local_normalize(word)


def _local_normalize(word: str) -> str:
    cleaned = " ".join(word.lower().strip().split())
    if not cleaned:
        return ""
    parts = cleaned.split(" ")
    last = parts[-1]
    lemma = _lemmas(last).get("NOUN")
    if lemma:
        parts[-1] = lemma[0]
    return " ".join(parts)


def words(text: str) -> list[str]:
    return WORD_RE.findall(text)


def noun_lemma(word: str) -> tuple[str, bool] | None:
    """(lemma, unambiguous) if the lexicon knows ``word`` as a noun, else None."""
    lower = word.lower()
    if lower in STOPWORDS or len(lower) < 3:
        return None
    lemmas = _lemmas(lower)
    if "NOUN" not in lemmas:
        return None
    lemma = lemmas["NOUN"][0]
    if lemma in GENERIC_NOUNS:
        return None
    return lemma, len(lemmas) == 1


def text_noun_counts(text: str) -> Counter[str]:
    """Salience of noun lemmas in running text (proper names and bare verbs skipped)."""
    tokens = words(text)
    counts: Counter[str] = Counter()
    capitalised: Counter[str] = Counter()
    lowered: Counter[str] = Counter()
    for index, token in enumerate(tokens):
        if token[0].isupper() and index > 0 and not text_sentence_start(tokens, index):
            capitalised[token.lower()] += 1
        elif token[0].islower():
            lowered[token.lower()] += 1
    for index, token in enumerate(tokens):
        lower = token.lower()
        if capitalised[lower] > lowered[lower]:
            continue  # mostly capitalised mid-sentence: a name ("Lily", "Spot")
        found = noun_lemma(token)
        if found is None:
            continue
        lemma, unambiguous = found
        after_determiner = index > 0 and tokens[index - 1].lower() in DETERMINERS
        if after_determiner and not unambiguous and index + 1 < len(tokens):
            # "a little car", "the brown kayak": a modifier, not the head noun.
            after_determiner = "NOUN" not in _lemmas(tokens[index + 1].lower())
        if unambiguous or after_determiner:
            counts[lemma] += 2 if after_determiner else 1
    return counts


def text_sentence_start(tokens: Sequence[str], index: int) -> bool:
    """Heuristic: capitalised words after these are probably sentence starts, not names."""
    return tokens[index - 1].lower() in {"said", "says", "asked", "cried"}


def title_nouns(title: str, text_counts: Counter[str] | None = None) -> list[str]:
    """Nouns of a title in order; ambiguous words count when the text uses them as nouns."""
    found: list[str] = []
    tokens = words(title)
    for index, token in enumerate(tokens):
        result = noun_lemma(token)
        if result is None:
            continue
        lemma, unambiguous = result
        if not unambiguous and not (text_counts and text_counts.get(lemma, 0) >= 2):
            before = tokens[index - 1].lower() if index else ""
            after = tokens[index + 1].lower() if index + 1 < len(tokens) else ""
            # "Catch the Star", "To Sleep": verbs; "The Fox", "Fox and Moon": nouns
            if before in {"to", "will", "can", "let", "lets", "let's"} or after in DETERMINERS:
                continue
        if lemma not in found:
            found.append(lemma)
    return found


def extract_keywords(title: str, text: str, k: int = 3) -> list[str]:
    """Up to ``k`` keywords: title nouns first, then the most salient nouns of the text."""
    counts = text_noun_counts(text)
    chosen = title_nouns(title, counts)[:k]
    for lemma, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if len(chosen) >= k:
            break
        if lemma not in chosen:
            chosen.append(lemma)
    return chosen


def lemmas_in_text(text: str) -> set[str]:
    """Every noun lemma (and lower-case surface form) in ``text`` — for keyword inclusion."""
    found: set[str] = set()
    for token in words(text):
        lower = token.lower()
        found.add(lower)
        lemma = _lemmas(lower).get("NOUN")
        if lemma:
            found.add(lemma[0])
    return found


def keyword_included(keyword: str, text: str, text_lemmas: Iterable[str] | None = None) -> bool:
    """Whether a story mentions ``keyword`` (any inflection; multi-word keywords by substring)."""
    keyword = keyword.lower().strip()
    if " " in keyword:
        return keyword in " ".join(words(text)).lower()
    lemmas = set(text_lemmas) if text_lemmas is not None else lemmas_in_text(text)
    return keyword in lemmas or _local_normalize(keyword) in lemmas

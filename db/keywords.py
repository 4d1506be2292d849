"""Keyword normalisation shared by the store, the skill and the generator.

Everyone must agree on one canonical spelling of a keyword, or "dragons" asked by a child would
never find a story tagged "dragon". The canonical form is the lower-case singular lemma of the
phrase's head noun (the last word), with leading articles/possessive determiners, possessive
``'s`` and punctuation removed. Singularisation uses lemminflect's lexicon (with its
out-of-vocabulary rules), not a hand-written plural table, read from the compact table in
:mod:`db.noun_forms` so a worker does not load all of lemminflect.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from db import noun_forms

#: Leading words that never carry meaning in a keyword ("the princess", "my teddy").
LEADING_DETERMINERS = frozenset(
    {"a", "an", "the", "some", "any", "my", "your", "our", "his", "her", "their", "its"}
    | {"this", "that", "these", "those"}
)
_POSSESSIVE_RE = re.compile(r"(?<=\w)['’]s\b|(?<=s)['’](?=\s|$)")
# Anything that is not a letter, digit, apostrophe or in-word hyphen becomes a space.
_NON_WORD_RE = re.compile(r"[^\w\s'’-]|_")
_EDGE_HYPHEN_RE = re.compile(r"(?:^|(?<=\s))-+|-+(?=\s|$)")
_MAX_LENGTH = 100


@lru_cache(maxsize=16384)
def _singular(word: str) -> str:
    """Singular lemma of one lower-case word; unchanged when it is not a noun."""
    if "-" in word:  # "teddy-bears": the head is the last part
        head, _, last = word.rpartition("-")
        return f"{head}-{_singular(last)}" if last else word
    if not word.isalpha():
        return word
    return noun_forms.singular(word)


@lru_cache(maxsize=16384)
def normalize_keyword(text: str) -> str:
    """Canonical keyword for ``text``: "The Dragons!" -> "dragon"; "" when nothing is left."""
    value = unicodedata.normalize("NFKC", str(text)).lower().replace("’", "'")
    value = _POSSESSIVE_RE.sub("", value)
    value = _NON_WORD_RE.sub(" ", value)
    value = _EDGE_HYPHEN_RE.sub(" ", value)
    words = [w.strip("'") for w in value.split()]
    words = [w for w in words if w]
    while words and words[0] in LEADING_DETERMINERS:
        words.pop(0)
    if not words:
        return ""
    words[-1] = _singular(words[-1])
    return " ".join(words)[:_MAX_LENGTH].strip()


@lru_cache(maxsize=4096)
def _inflections(word: str) -> frozenset[str]:
    from lemminflect import getAllInflections, getAllInflectionsOOV

    forms = getAllInflections(word, upos="NOUN") or getAllInflectionsOOV(word, upos="NOUN")
    return frozenset(form for values in forms.values() for form in values)


def surface_forms(lemma: str) -> set[str]:
    """Every spelling of a canonical keyword a story text may use: "mouse" -> {"mouse", "mice"}.

    Multi-word keywords inflect their last word ("teddy bear" -> "teddy bears").
    """
    words = lemma.strip().lower().split()
    if not words:
        return set()
    head = words[-1]
    prefix = " ".join(words[:-1])
    forms = {head} | (_inflections(head) if head.isalpha() else set())
    return {f"{prefix} {form}" if prefix else form for form in forms}


def normalize_keywords(texts: list[str] | tuple[str, ...]) -> list[str]:
    """Normalise several keywords, dropping empties and duplicates, keeping first-seen order."""
    result: list[str] = []
    for text in texts:
        lemma = normalize_keyword(text)
        if lemma and lemma not in result:
            result.append(lemma)
    return result

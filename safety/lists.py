"""Word lists in data files, matched as whole words with every inflection (torch-free).

File format (``safety/data/*.txt``)::

    # a comment
    [category]          one heading per group; entries below belong to it
    kill                a lemma: every inflection is matched (kills, killed, killing)
    beat up             a phrase: its first word is inflected (beats up, beaten up)
    !dice               never matched, as a word or any of its forms ("dice" is not "die")
    !dead battery       never matched, as a phrase: its words are skipped where it occurs

Matching is case-insensitive and on whole words anywhere in the text. Every entry is expanded to
its inflections with lemminflect (the library the keyword normaliser uses), and every word of
the text is also reduced to its lemmas, so a form the expansion missed is still caught
("farting" -> "fart"). Hyphenated compounds are split ("rainbow-tit" -> "rainbow", "tit").
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Match:
    """One listed word or phrase found in a text."""

    category: str
    found: str  # as written, lower-cased


@dataclass
class WordLists:
    """Listed words and phrases by category, plus the never-matched words and phrases."""

    words: dict[str, str] = field(default_factory=dict)  # word form -> category
    lemmas: dict[str, str] = field(default_factory=dict)  # entry lemma -> category
    phrases: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    allowed: frozenset[str] = frozenset()
    allowed_phrases: tuple[re.Pattern[str], ...] = ()
    categories: tuple[str, ...] = ()
    #: Precomputed ``lemmas_of(word) & (lemmas | allowed)`` for every lexicon word that has any
    #: (safety/compiled.py): the request path then needs no lemminflect at all.
    lemma_index: dict[str, frozenset[str]] | None = None

    def _lemmas(self, word: str) -> frozenset[str]:
        if self.lemma_index is not None:
            return self.lemma_index.get(word, frozenset())
        return lemmas_of(word)

    def find(self, text: str) -> list[Match]:
        """Every listed word or phrase in ``text``, in order of appearance (words first)."""
        lowered = text.lower().replace("\u2019", "'")
        for pattern in self.allowed_phrases:
            lowered = pattern.sub(lambda m: " " * len(m.group(0)), lowered)
        found: list[Match] = []
        for word in _WORD_RE.findall(lowered):
            base = word.split("'", 1)[0]  # "dragon's" -> "dragon", "don't" -> "don"
            lemmas = self._lemmas(base)
            if word in self.allowed or base in self.allowed or lemmas & self.allowed:
                continue  # "!suck" also keeps "sucked" and "sucking"
            category = self.words.get(word) or self.words.get(base)
            if category is None:
                for lemma in sorted(lemmas):
                    if lemma in self.lemmas and lemma not in self.allowed:
                        category = self.lemmas[lemma]
                        break
            if category is not None:
                found.append(Match(category, word))
        for pattern, category in self.phrases:
            found.extend(Match(category, m.group(0)) for m in pattern.finditer(lowered))
        return found


@lru_cache(maxsize=8192)
def inflections_of(word: str) -> frozenset[str]:
    """The word and all its inflections (every part of speech lemminflect knows)."""
    from lemminflect import getAllInflections, getAllInflectionsOOV

    forms = {word}
    found = getAllInflections(word)
    if not found:
        found = {**getAllInflectionsOOV(word, upos="NOUN"), **getAllInflectionsOOV(word, "VERB")}
    for values in found.values():
        forms.update(v.lower() for v in values)
    return frozenset(forms)


@lru_cache(maxsize=65536)
def lemmas_of(word: str) -> frozenset[str]:
    from lemminflect import getAllLemmas

    return frozenset(lemma.lower() for values in getAllLemmas(word).values() for lemma in values)


def lexicon_words() -> list[str]:
    """Every lower-case alphabetic word lemminflect can lemmatise (outside its lexicon
    ``getAllLemmas`` answers nothing): what precomputed tables must cover."""
    from lemminflect import Lemmatizer

    lemmatizer = Lemmatizer()
    entries = set(lemmatizer._getLemmaDict()) | set(lemmatizer._getOverridesDict())
    return sorted(w for w in entries if w.isalpha() and w == w.lower())


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    first, rest = phrase.split(" ", 1)
    firsts = "|".join(
        re.escape(f) for f in sorted(inflections_of(first), key=lambda form: (-len(form), form))
    )
    return re.compile(rf"\b(?:{firsts})\s+{re.escape(rest)}\b")


def parse_lists(
    text: str, extra: dict[str, set[str]] | None = None, inflect_extra: bool = False
) -> WordLists:
    """Build :class:`WordLists` from the format above; ``extra`` adds category -> entries
    (better-profanity's list), matched as written unless ``inflect_extra``."""
    lists = WordLists()
    allowed: set[str] = set()
    allowed_phrases: list[re.Pattern[str]] = []
    entries: list[tuple[str, str, bool]] = []
    categories: list[str] = []
    category = "unsuitable"
    for raw_line in text.splitlines():
        line = " ".join(raw_line.split("#", 1)[0].strip().lower().split())
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1].strip() or "unsuitable"
            categories.append(category)
        elif line.startswith("!"):
            entry = line[1:].strip()
            if " " in entry:
                allowed_phrases.append(re.compile(rf"\b{re.escape(entry)}\b"))
            else:
                allowed.add(entry)
        else:
            entries.append((line, category, True))
    for extra_category, words in (extra or {}).items():
        categories.append(extra_category)
        entries += [(w, extra_category, inflect_extra) for w in sorted(words) if w]
    for entry, cat, inflect in entries:
        if entry in allowed:
            continue
        if " " in entry:
            lists.phrases.append((_phrase_pattern(entry), cat))
            continue
        forms = inflections_of(entry) if inflect else {entry}
        for form in forms:
            if form not in allowed:
                lists.words.setdefault(form, cat)
        if inflect:
            lists.lemmas.setdefault(entry, cat)
    lists.allowed = frozenset(allowed)
    lists.allowed_phrases = tuple(allowed_phrases)
    lists.categories = tuple(dict.fromkeys(categories))
    return lists


def profanity_words() -> set[str]:
    """better-profanity's shipped word list (single words and phrases, lower-case).

    Read from the package's folder without importing it: its import builds a censor over
    every character variant of the list (~12 ms of a skill's cold start) that we never use.
    """
    spec = importlib.util.find_spec("better_profanity")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("better-profanity is not installed", name="better_profanity")
    path = Path(next(iter(spec.submodule_search_locations))) / "profanity_wordlist.txt"
    return {
        " ".join(line.strip().lower().split())
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }

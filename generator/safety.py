"""The child-safety gate every generated story passes before it can be served.

Two word lists, one matcher:

* better-profanity's word list (its own ``contains_profanity`` was measured at ~0.35 s per story
  here because it expands leetspeak variants on every call: far too slow for the live path, and
  model output does not write leetspeak);
* ``generator/data/bedtime_blocklist.txt``: themes unsuitable at bedtime (violence, death,
  weapons, horror, drugs, ...) grouped by category.

Matching is on whole words, case-insensitive, anywhere in the title or text (mid-sentence too),
and inflection-aware in both directions: every blocklist entry is expanded to its inflections
(kill -> killed, knife -> knives) and every word of the text is also reduced to its lemmas, so a
form the expansion missed is still caught. ``!word`` lines are never blocked ("pot", "weed").
Torch-free and cheap (a few hundred microseconds per story).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

BLOCKLIST_PATH = Path(__file__).resolve().parent / "data" / "bedtime_blocklist.txt"
PROFANITY_CATEGORY = "profanity"
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class SafetyVerdict:
    """Result of the gate: ``ok`` plus which words of which category failed it."""

    ok: bool
    matches: tuple[tuple[str, str], ...] = ()  # (category, word as written, lower-cased)

    @property
    def reason(self) -> str | None:
        """Short human-readable reason for the rejection, None when ok."""
        if self.ok:
            return None
        found: dict[str, list[str]] = {}
        for category, word in self.matches:
            found.setdefault(category, [])
            if word not in found[category]:
                found[category].append(word)
        return "unsafe: " + "; ".join(f"{cat} ({', '.join(ws[:5])})" for cat, ws in found.items())

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "matches": [list(m) for m in self.matches], "reason": self.reason}


@dataclass
class Blocklist:
    """Blocked single words and phrases by category, plus the never-block list."""

    words: dict[str, str] = field(default_factory=dict)  # word form -> category
    lemmas: dict[str, str] = field(default_factory=dict)  # entry lemma -> category
    phrases: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    allowed: frozenset[str] = frozenset()


def _inflections(word: str) -> set[str]:
    """The word and all its inflections (every part of speech lemminflect knows)."""
    forms = {word}
    try:
        from lemminflect import getAllInflections, getAllInflectionsOOV
    except ImportError:  # pragma: no cover - lemminflect is a core dependency
        return forms | {word + "s", word + "es", word + "ed", word + "ing"}
    found = getAllInflections(word)
    if not found:
        found = {**getAllInflectionsOOV(word, upos="NOUN"), **getAllInflectionsOOV(word, "VERB")}
    for values in found.values():
        forms.update(v.lower() for v in values)
    return forms


def _lemmas(word: str) -> set[str]:
    try:
        from lemminflect import getAllLemmas
    except ImportError:  # pragma: no cover
        return set()
    return {lemma.lower() for values in getAllLemmas(word).values() for lemma in values}


def parse_blocklist(text: str, profanity_words: set[str] | None = None) -> Blocklist:
    """Build a :class:`Blocklist` from the file format described at the top of the file."""
    blocklist = Blocklist()
    allowed: set[str] = set()
    entries: list[tuple[str, str]] = []
    category = "unsuitable"
    for raw_line in text.splitlines():
        line = raw_line.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1].strip() or "unsuitable"
        elif line.startswith("!"):
            allowed.add(line[1:].strip())
        else:
            entries.append((" ".join(line.split()), category))
    entries += [(w, PROFANITY_CATEGORY) for w in sorted(profanity_words or ()) if w]
    for entry, cat in entries:
        if entry in allowed:
            continue
        if " " in entry:
            first, rest = entry.split(" ", 1)
            firsts = "|".join(re.escape(f) for f in sorted(_inflections(first)))
            pattern = re.compile(rf"\b(?:{firsts})\s+{re.escape(rest)}\b")
            blocklist.phrases.append((pattern, cat))
            continue
        # Profanity entries are matched as written: inflecting slang produces false positives.
        forms = {entry} if cat == PROFANITY_CATEGORY else _inflections(entry)
        for form in forms:
            if form not in allowed:
                blocklist.words.setdefault(form, cat)
        if cat != PROFANITY_CATEGORY:
            blocklist.lemmas.setdefault(entry, cat)
    blocklist.allowed = frozenset(allowed)
    return blocklist


def _profanity_words() -> set[str]:
    """better-profanity's shipped word list (single words and phrases, lower-case)."""
    try:
        import better_profanity
    except ImportError:
        logger.warning("better-profanity is not installed: only the bedtime blocklist applies")
        return set()
    path = Path(better_profanity.__file__).resolve().parent / "profanity_wordlist.txt"
    return {
        " ".join(line.strip().lower().split())
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


@lru_cache(maxsize=4)
def load_blocklist(path: str | None = None) -> Blocklist:
    """The default gate's lists (cached: building the inflections takes ~0.1 s)."""
    source = Path(path) if path else BLOCKLIST_PATH
    return parse_blocklist(source.read_text(encoding="utf-8"), _profanity_words())


def check_text(text: str, blocklist: Blocklist | None = None) -> SafetyVerdict:
    """Whether ``text`` (a title, a story, or both joined) is fit for a bedtime story."""
    blocklist = blocklist or load_blocklist()
    lowered = text.lower().replace("\u2019", "'")
    matches: list[tuple[str, str]] = []
    for word in _WORD_RE.findall(lowered):
        base = word.split("'", 1)[0]  # "dragon's" -> "dragon", "don't" -> "don"
        if word in blocklist.allowed or base in blocklist.allowed:
            continue
        category = blocklist.words.get(word) or blocklist.words.get(base)
        if category is None and base not in blocklist.allowed:
            for lemma in _lemmas(base):
                if lemma in blocklist.lemmas and lemma not in blocklist.allowed:
                    category = blocklist.lemmas[lemma]
                    break
        if category is not None:
            matches.append((category, word))
    for pattern, category in blocklist.phrases:
        for found in pattern.finditer(lowered):
            matches.append((category, found.group(0)))
    return SafetyVerdict(ok=not matches, matches=tuple(matches))


def check_story(title: str, text: str, blocklist: Blocklist | None = None) -> SafetyVerdict:
    """The gate on a whole story: title and text together."""
    return check_text(f"{title}\n{text}", blocklist)

"""How a keyword is said in a sentence: "a submarine", "an owl", "the moon", "stories about kites".

Keywords are stored as bare singular lemmas ("submarine", "moon"); spoken bare they sound wrong
("a story about submarine"). Templates in skill/locales take phrases built here: ``one`` for a
single story ("a story about a kite and the moon"), ``many`` for the catalogue ("stories about
kites and the moon"). The word lists are English, shared by every English locale we publish.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from db import noun_forms

#: There is only one of these in a child's world: "the moon", never "a moon" or "moons".
UNIQUE = frozenset(
    {"moon", "sun", "sky", "sea", "ocean", "wind", "night", "dark", "world", "earth", "stars"}
)
#: Uncountable: no article, no plural ("a story about rain", "stories about honey").
MASS = frozenset(
    {
        "rain",
        "snow",
        "honey",
        "treasure",
        "music",
        "space",
        "weather",
        "water",
        "fog",
        "ice",
        "bedtime",
        "christmas",
        "halloween",
        "magic",
        "friendship",
        "sleep",
    }
)
#: Words that start with a vowel letter but a consonant sound, and the reverse.
_CONSONANT_SOUND = re.compile(r"^(uni|use|usu|eu|one|once|ukulele|u[rt]i)", re.IGNORECASE)
_VOWEL_SOUND = re.compile(r"^(hour|honest|honou?r|heir)", re.IGNORECASE)
_ARTICLES = ("a ", "an ", "the ", "some ", "my ", "your ")


def indefinite_article(word: str) -> str:
    """'a' or 'an' by sound, for the common cases ("an owl", "a unicorn", "an hour")."""
    if _VOWEL_SOUND.match(word):
        return "an"
    if _CONSONANT_SOUND.match(word):
        return "a"
    return "an" if word[:1].lower() in "aeiou" else "a"


def _last_word(phrase: str) -> str:
    return phrase.rpartition(" ")[2].lower()


def _has_determiner(phrase: str) -> bool:
    return phrase.lower().startswith(_ARTICLES)


@lru_cache(maxsize=2048)
def one(phrase: str) -> str:
    """A keyword as one thing in a sentence: "a kite", "an owl", "the moon", "rain"."""
    phrase = " ".join(phrase.split())
    if not phrase or _has_determiner(phrase):
        return phrase
    last = _last_word(phrase)
    if last in UNIQUE:
        return f"the {phrase}"
    if last in MASS or _looks_plural(phrase):
        return phrase
    return f"{indefinite_article(phrase)} {phrase}"


@lru_cache(maxsize=2048)
def many(phrase: str) -> str:
    """A keyword as a kind of thing: "kites", "teddy bears", "the moon", "rain"."""
    phrase = " ".join(phrase.split())
    if not phrase or _has_determiner(phrase):
        return phrase
    last = _last_word(phrase)
    if last in UNIQUE:
        return f"the {phrase}"
    if last in MASS or not last.isalpha() or _looks_plural(phrase):
        return phrase
    head = phrase.rpartition(" ")[0]
    return f"{head} {noun_forms.plural(last)}".strip()


def _looks_plural(phrase: str) -> bool:
    """True when the words already name several things ("stars", "fireflies")."""
    last = _last_word(phrase)
    if last in UNIQUE or last in MASS or not last.endswith("s") or last.endswith("ss"):
        return False
    return noun_forms.singular(last) != last


def ones(phrases: Sequence[str]) -> list[str]:
    return [one(phrase) for phrase in phrases]


def manys(phrases: Sequence[str]) -> list[str]:
    return [many(phrase) for phrase in phrases]

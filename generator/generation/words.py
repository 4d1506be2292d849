"""English words for the story judges: is a word real, which words in a text are made up.

Shared by the storyteller's judge and the live gate (``StoryConfig.max_made_up_words``).
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD_RE = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?")

_FUNCTION_WORDS = frozenset(
    str.split(
        """
        a an the and or but nor of with for upon at from into onto if until because every than
        towards toward among beside beneath despite within without across along around through i me
        my we our you your he him his she her it its they them their this that these those who whom
        what which when where why how all any both each few more most other some such no not only
        own same so too very can will just should now is am are was were be been being have has had
        do does did would could might must shall may can't won't cannot gonna wanna yes oh okay ok
        hello hi bye wow yay yummy hmm mommy daddy mom dad mum teddy tv one two three four five six
        seven eight nine ten there here then
        """
    )
)
_CONTRACTION_RE = re.compile(r"(n't|'s|'re|'ll|'ve|'d|'m)$")


@lru_cache(maxsize=65536)
def known_word(word: str) -> bool:
    """A function word or one lemminflect can lemmatise: the shared notion of "English"."""
    if word in _FUNCTION_WORDS:
        return True
    base = _CONTRACTION_RE.sub("", word)
    if base in _FUNCTION_WORDS:
        return True
    try:
        from lemminflect import getAllLemmas
    except ImportError:  # pragma: no cover - lemminflect is a core dependency
        return True
    return bool(getAllLemmas(base)) or (word.endswith("n't") and bool(getAllLemmas(base[:-1])))


@lru_cache(maxsize=1)
def _lexicon() -> frozenset[str]:
    """Webster's 2nd + GCIDE (264k words, the ``english-words`` package): a kept word list."""
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True, alpha=True))


_SUFFIXES = ("'s", "s", "es", "ed", "d", "ing", "ly", "er", "est", "ies")


@lru_cache(maxsize=65536)
def is_english_word(word: str) -> bool:
    """In the word list or lemminflect's lexicon, inflected, or a compound of two such words
    ("treehouse", "birdsong") - but not a broken or invented one ("bookshel", "scoting")."""
    lexicon = _lexicon()
    if word in lexicon or known_word(word):
        return True
    for suffix in _SUFFIXES:
        stem = word[: -len(suffix)]
        if not word.endswith(suffix) or len(stem) < 3:
            continue
        if known_word(stem) or (suffix == "ies" and known_word(stem + "y")):
            return True
        if len(stem) >= 5 and stem in lexicon:
            return True
    # Compounds of two common words (lemminflect knows both): "treehouse", "mealworms".
    return any(
        known_word(word[:i]) and (known_word(word[i:]) or known_word(word[i:].rstrip("s")))
        for i in range(3, len(word) - 2)
    )


def made_up_words(text: str) -> list[str]:
    """Lower-case words that are not English ("bookshel", "hallangippin"); names are allowed."""
    found = []
    for word in _WORD_RE.findall(text.replace("\u2019", "'")):
        if word[0].isupper() or not word.isascii():
            continue  # names are allowed: "Pip", "Luna"
        lower = word.lower()
        if not is_english_word(lower) and not is_english_word(lower.split("'")[0]):
            found.append(lower)
    return found

"""Singular and plural nouns from lemminflect's lexicon, precomputed into one small table.

Why: every keyword a listener says is singularised, and lemminflect loads its whole lexicon
(all parts of speech, inflections, its out-of-vocabulary model and numpy) on first use: ~0.5 s
and ~60 MB in every worker. The skill only needs nouns, so ``data/noun_forms.json.gz`` keeps
exactly the answers lemminflect gives for every word of its lexicon that they change (or that
end in "s" and are known, so the out-of-vocabulary rules must not touch them): ~40k entries,
a few MB in memory, loaded once per process. A word outside the lexicon that looks plural
("zorblats") still asks lemminflect's rules, loaded only then; the answers are identical
either way (tests/db/test_keywords.py compares them word by word).

Regenerate after upgrading lemminflect: ``python -m db.noun_forms``.
"""

from __future__ import annotations

import functools
import gzip
import json
import sys
from pathlib import Path

TABLE = Path(__file__).parent / "data" / "noun_forms.json.gz"


@functools.cache
def _table() -> tuple[dict[str, str], dict[str, str]]:
    """(word -> singular noun lemma, noun lemma -> plural), as built by :func:`build`."""
    with gzip.open(TABLE, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    return data["singular"], data["plural"]


def load() -> None:
    """Read the table now (at start-up) rather than on the first keyword of a request."""
    _table()


def singular(word: str) -> str:
    """Singular lemma of one lower-case alphabetic word; unchanged when it is not a noun."""
    known = _table()[0].get(word)
    if known is not None:
        return known
    if not (word.isascii() and word.endswith("s")):
        # Unknown and not plural-looking ("zorblat", "café"): OOV rules would only mangle it.
        return word
    return _oov_singular(word)


def plural(lemma: str) -> str:
    """The plural of a one-word noun lemma ("mouse" -> "mice"); the lemma when it has none."""
    known = _table()[1].get(lemma)
    if known is not None:
        return known
    from lemminflect import getInflection  # outside the lexicon: lemminflect's rules

    forms = getInflection(lemma, tag="NNS")
    return forms[0] if forms else lemma


def _oov_singular(word: str) -> str:
    from lemminflect import getLemma

    lemmas = getLemma(word, upos="NOUN", lemmatize_oov=True)
    return lemmas[0] if lemmas else word


def lemminflect_singular(word: str) -> str:
    """What lemminflect answers for one lower-case alphabetic word (the table's reference)."""
    from lemminflect import getAllLemmas

    known = getAllLemmas(word)
    if known and "NOUN" not in known:
        # A known non-noun ("was", "is"): don't let the OOV noun rules mangle it ("wa").
        return word
    if "NOUN" in known:
        return str(known["NOUN"][0])
    if not (word.isascii() and word.endswith("s")):
        return word
    return _oov_singular(word)


def lemminflect_plural(lemma: str) -> str:
    from lemminflect import getInflection

    forms = getInflection(lemma, tag="NNS")
    return str(forms[0]) if forms else lemma


def vocabulary() -> tuple[list[str], list[str]]:
    """The lower-case alphabetic words of lemminflect's lemma and inflection lexicons."""
    from lemminflect import Inflections

    from safety.lists import lexicon_words

    inflections = Inflections()
    lemmas = set(inflections._getInflDict()) | set(inflections._getOverridesDict())
    return lexicon_words(), sorted(w for w in lemmas if w.isalpha() and w == w.lower())


def build() -> dict[str, dict[str, str]]:
    """The table: each lexicon word whose singular is not itself or needs the lexicon (it ends
    in "s"), and every lexicon lemma's plural."""
    words, lemmas = vocabulary()
    singulars = {}
    for word in words:
        answer = lemminflect_singular(word)
        if answer != word or (word.isascii() and word.endswith("s")):
            singulars[word] = answer
    plurals = {lemma: lemminflect_plural(lemma) for lemma in lemmas}
    return {"singular": singulars, "plural": plurals}


def main() -> int:
    table = build()
    payload = json.dumps(table, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    with gzip.GzipFile(TABLE, "wb", mtime=0) as handle:  # mtime 0: the same bytes every build
        handle.write(payload.encode("utf-8"))
    sizes = {name: len(entries) for name, entries in table.items()}
    print(f"wrote {TABLE} ({TABLE.stat().st_size:,} bytes): {sizes}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Singular and plural nouns from lemminflect's lexicon, precomputed into small shards.

Why: every keyword a listener says is singularised, and lemminflect loads its whole lexicon
(all parts of speech, inflections, its out-of-vocabulary model and numpy) on first use: ~0.5 s
and ~60 MB in every worker. The skill only needs nouns, so ``data/noun_forms.zip`` keeps
exactly the answers lemminflect gives for every word of its lexicon that they change (or that
end in "s" and are known, so the out-of-vocabulary rules must not touch them): ~40k entries.
They are sharded by first letter, and a process reads a shard only when a word starting with
that letter arrives (a few hundred kB in memory and well under a millisecond each), instead of
all of them at start-up (~18 ms and ~8 MB per worker). A word outside the lexicon that looks
plural ("zorblats") still asks lemminflect's rules, loaded only then; the answers are identical
either way (tests/db/test_keywords.py compares them word by word).

Regenerate after upgrading lemminflect: ``python -m db.noun_forms``.
"""

from __future__ import annotations

import functools
import json
import sys
import zipfile
from pathlib import Path

TABLE = Path(__file__).parent / "data" / "noun_forms.zip"
SINGULAR = "singular"
PLURAL = "plural"
#: A fixed member date, so a rebuild from the same lemminflect writes the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def shard_of(word: str) -> str:
    """The shard a word lives in: its first letter, or "_" for anything else."""
    first = word[:1]
    return first if "a" <= first <= "z" else "_"


@functools.cache
def _archive() -> zipfile.ZipFile:
    return zipfile.ZipFile(TABLE)


@functools.cache
def _shard(kind: str, shard: str) -> dict[str, str]:
    """One shard of one table; an absent member is an empty shard."""
    try:
        raw = _archive().read(f"{kind}/{shard}.json")
    except KeyError:
        return {}
    return json.loads(raw)


def _lookup(kind: str, word: str) -> str | None:
    return _shard(kind, shard_of(word)).get(word)


def load() -> None:
    """Open the table at start-up (its index only: shards are read on first use)."""
    _archive()


def entries() -> dict[str, dict[str, str]]:
    """The whole table as :func:`build` returns it (tests; not for the skill's hot path)."""
    names = _archive().namelist()
    table: dict[str, dict[str, str]] = {SINGULAR: {}, PLURAL: {}}
    for name in names:
        kind, _, member = name.partition("/")
        table[kind].update(_shard(kind, member.removesuffix(".json")))
    return table


def singular(word: str) -> str:
    """Singular lemma of one lower-case alphabetic word; unchanged when it is not a noun."""
    known = _lookup(SINGULAR, word)
    if known is not None:
        return known
    if not (word.isascii() and word.endswith("s")):
        # Unknown and not plural-looking ("zorblat", "café"): OOV rules would only mangle it.
        return word
    return _oov_singular(word)


def plural(lemma: str) -> str:
    """The plural of a one-word noun lemma ("mouse" -> "mice"); the lemma when it has none."""
    known = _lookup(PLURAL, lemma)
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
    return {SINGULAR: singulars, PLURAL: plurals}


def write(table: dict[str, dict[str, str]], path: Path = TABLE) -> None:
    """One deflated JSON member per table and first letter, in a stable order."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for kind in (SINGULAR, PLURAL):
            shards: dict[str, dict[str, str]] = {}
            for word, answer in sorted(table[kind].items()):
                shards.setdefault(shard_of(word), {})[word] = answer
            for shard, part in sorted(shards.items()):
                member = zipfile.ZipInfo(f"{kind}/{shard}.json", date_time=_ZIP_DATE)
                member.compress_type = zipfile.ZIP_DEFLATED
                payload = json.dumps(part, ensure_ascii=False, separators=(",", ":"))
                out.writestr(member, payload.encode("utf-8"))


def main() -> int:
    table = build()
    write(table)
    sizes = {name: len(found) for name, found in table.items()}
    print(f"wrote {TABLE} ({TABLE.stat().st_size:,} bytes): {sizes}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

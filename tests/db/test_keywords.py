"""The keyword normaliser: one canonical spelling shared by store, skill and generator."""

from __future__ import annotations

import pytest

from db.keywords import normalize_keyword, normalize_keywords, surface_forms


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("dragons", "dragon"),
        ("mice", "mouse"),
        ("the Princess", "princess"),
        ("fairies", "fairy"),
        ("teddy bears", "teddy bear"),
        ("Teddy-Bears!", "teddy-bear"),
        ("  a   Unicorn ", "unicorn"),
        ("The Dragon's", "dragon"),
        ("the dragons'", "dragon"),
        ("my teddy bear’s", "teddy bear"),
        ("wolves", "wolf"),
        ("geese", "goose"),
        ("teeth", "tooth"),
        ("sheep", "sheep"),
        ("princess", "princess"),
        ("octopus", "octopus"),
        ("bus", "bus"),
        ("dinosaur", "dinosaur"),
        ("zorblats", "zorblat"),  # unknown word: lemminflect's out-of-vocabulary rules
        ("café", "café"),  # unknown, not plural-looking: left alone
        ('"Quoted" Wolves', "quoted wolf"),
        ("100% cats", "100 cat"),
        ("back\\slash", "back slash"),
        ("drag_on", "drag on"),
        ("O'Brien", "o'brien"),
        ("was", "was"),  # known non-noun: not mangled into "wa"
        ("the", ""),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_normalize_keyword(raw: str, expected: str) -> None:
    assert normalize_keyword(raw) == expected


def test_normalize_is_idempotent() -> None:
    for raw in ["dragons", "teddy bears", "the Princess", "mice", "o'brien"]:
        once = normalize_keyword(raw)
        assert normalize_keyword(once) == once


def test_normalize_keywords_dedupes_in_order() -> None:
    assert normalize_keywords(["Dragons", "dragon", "the", "mice"]) == ["dragon", "mouse"]


@pytest.mark.parametrize(
    ("lemma", "expected"),
    [
        ("mouse", {"mouse", "mice"}),
        ("dragon", {"dragon", "dragons"}),
        ("teddy bear", {"teddy bear", "teddy bears"}),
        ("fairy", {"fairy", "fairies"}),
    ],
)
def test_surface_forms(lemma: str, expected: set[str]) -> None:
    assert expected <= surface_forms(lemma)


def test_surface_forms_of_nothing() -> None:
    assert surface_forms("  ") == set()


def test_the_noun_table_is_what_lemminflect_builds_now() -> None:
    """db/data/noun_forms.zip is current: rebuilt from the installed lemminflect, equal."""
    from db import noun_forms

    assert noun_forms.build() == noun_forms.entries()


def test_a_word_reads_only_its_own_shard_of_the_noun_table(tmp_path, monkeypatch) -> None:
    """A worker holds the shards its listeners' words needed, not the whole table."""
    from db import noun_forms

    table = {"singular": {"dragons": "dragon", "boats": "boat"}, "plural": {"dragon": "dragons"}}
    monkeypatch.setattr(noun_forms, "TABLE", tmp_path / "forms.zip")
    noun_forms.write(table, noun_forms.TABLE)
    noun_forms._archive.cache_clear()
    noun_forms._shard.cache_clear()
    try:
        assert noun_forms.singular("dragons") == "dragon"
        assert noun_forms.plural("dragon") == "dragons"
        assert noun_forms._shard.cache_info().currsize == 2  # singular/d and plural/d only
        assert noun_forms.entries() == table
    finally:
        noun_forms._archive.cache_clear()
        noun_forms._shard.cache_clear()


def test_the_noun_table_answers_as_lemminflect_does() -> None:
    """Every lexicon word, plus words outside it, singularised and pluralised both ways."""
    from db import noun_forms

    words, lemmas = noun_forms.vocabulary()
    outside = ["zorblats", "zorblat", "blorps", "café", "glimmerwings", "snufflebus"]
    for word in [*words, *outside]:
        assert noun_forms.singular(word) == noun_forms.lemminflect_singular(word), word
    for lemma in [*lemmas, *outside]:
        assert noun_forms.plural(lemma) == noun_forms.lemminflect_plural(lemma), lemma


def test_known_keywords_are_normalised_without_loading_lemminflect() -> None:
    """The skill's worker never loads lemminflect for a word of its lexicon (time and memory)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from db.keywords import normalize_keyword\n"
        "from skill.conversation import topic_words\n"
        "assert normalize_keyword('The Dragons!') == 'dragon'\n"
        "assert normalize_keyword('mice') == 'mouse' and normalize_keyword('was') == 'was'\n"
        "assert topic_words('teddy bear') == 'teddy bears'\n"
        "print('lemminflect' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

import pytest

from generator.keywords import extract_keywords, keyword_included, normalize_keyword, title_nouns


@pytest.mark.parametrize(("word", "lemma"), [("Foxes", "fox"), ("mice", "mouse"), ("moon", "moon")])
def test_normalize_keyword(word: str, lemma: str) -> None:
    assert normalize_keyword(word) == lemma


def test_title_nouns_skip_verbs_and_function_words() -> None:
    assert title_nouns("The Fox Who Visited the Moon") == ["fox", "moon"]


def test_extract_keywords_pads_from_text_and_skips_names() -> None:
    text = (
        "Lily saw a dragon near the castle. Lily gave the dragon a cookie. "
        "The dragon flew over the castle with the cookie."
    )
    keywords = extract_keywords("", text, k=3)
    assert keywords[0] == "dragon"
    assert set(keywords) == {"dragon", "castle", "cookie"}
    assert "lily" not in keywords


def test_title_keywords_come_first_and_are_capped() -> None:
    text = "The boat sailed. The boat was green."
    assert extract_keywords("The Owl and the Kitten", text, k=3) == ["owl", "kitten", "boat"]
    assert extract_keywords("The Owl, the Kitten and the Moon", text, k=2) == ["owl", "kitten"]


def test_keyword_included_matches_inflections() -> None:
    assert keyword_included("mouse", "Two mice ran home.")
    assert keyword_included("fox", "The foxes slept.")
    assert not keyword_included("dragon", "The knight slept.")

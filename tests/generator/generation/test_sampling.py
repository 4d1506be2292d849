"""The sampling loop on a tiny random model: keyword guarantee, padding, deadline, bits/char."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from generator.generation.assemble import keyword_in_text  # noqa: E402
from generator.generation.config import StoryConfig  # noqa: E402
from generator.generation.sampling import bits_per_char, sample_batch  # noqa: E402
from generator.prompting import build_prompt, parse_generation  # noqa: E402

KEYWORD_SETS = [
    ["dragon", "kite"],
    ["unicorn"],  # spelled letter by letter by the tiny BPE: exercises the forced continuation
    ["moon", "bear", "boat"],
    ["mouse"],
    ["teddy bear"],  # multi-word keyword
    ["owl", "garden"],
]
SETTINGS = StoryConfig(
    max_new_tokens=90, target_new_tokens=60, no_repeat_ngram_size=3, min_story_tokens=0
)


def _stories(raws) -> list[str]:  # type: ignore[no-untyped-def]
    """The text that would be stored: parsed, cleaned and cut at the last full sentence."""
    from generator.generation.assemble import clean_text, cut_at_last_sentence

    return [cut_at_last_sentence(clean_text(parse_generation(r.text).text))[0] for r in raws]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_keyword_is_in_the_story(tiny, seed: int) -> None:  # type: ignore[no-untyped-def]
    prompts = [build_prompt(k) for k in KEYWORD_SETS]
    raws = sample_batch(tiny.model, tiny.tokenizer, prompts, KEYWORD_SETS, SETTINGS, seed=seed)
    for raw, story, keywords in zip(raws, _stories(raws), KEYWORD_SETS, strict=True):
        assert raw.keywords_satisfied
        for keyword in keywords:
            assert keyword_in_text(keyword, story), (keyword, story)


def test_prefix_only_reference_misses_keywords(tiny) -> None:  # type: ignore[no-untyped-def]
    """The same loop without the guide: a random model rarely writes the keywords."""
    prompts = [build_prompt(k) for k in KEYWORD_SETS]
    raws = sample_batch(
        tiny.model, tiny.tokenizer, prompts, KEYWORD_SETS, SETTINGS, enforce_keywords=False, seed=0
    )
    found = [
        all(keyword_in_text(k, s) for k in kws)
        for s, kws in zip(_stories(raws), KEYWORD_SETS, strict=True)
    ]
    assert not all(found)


def test_batched_rows_are_independent_of_padding(tiny) -> None:  # type: ignore[no-untyped-def]
    """Greedy decoding of a prompt alone and inside a left-padded batch gives the same text."""
    greedy = StoryConfig(temperature=0, max_new_tokens=30, target_new_tokens=25, min_story_tokens=0)
    short = [["owl"]]
    long = [["owl"], ["moon", "bear", "boat", "teddy bear"]]
    alone = sample_batch(
        tiny.model, tiny.tokenizer, [build_prompt(k) for k in short], short, greedy, seed=0
    )
    batched = sample_batch(
        tiny.model, tiny.tokenizer, [build_prompt(k) for k in long], long, greedy, seed=0
    )
    assert alone[0].token_ids == batched[0].token_ids


def test_bits_per_char_is_positive(tiny) -> None:  # type: ignore[no-untyped-def]
    bpc = bits_per_char(tiny.model, tiny.tokenizer, ["The owl slept.", "A bear sang a song."])
    assert 0 < bpc < 20


def test_deadline_stops_generation(tiny) -> None:  # type: ignore[no-untyped-def]
    import time

    raws = sample_batch(
        tiny.model,
        tiny.tokenizer,
        [build_prompt(["owl"])],
        [["owl"]],
        StoryConfig(max_new_tokens=400, min_story_tokens=0),
        seed=0,
        deadline=time.monotonic() + 0.05,
    )
    assert not raws[0].finished
    assert len(raws[0].token_ids) < 400


def test_model_dir_fixture_is_a_model(tiny) -> None:  # type: ignore[no-untyped-def]
    assert Path(tiny.path).is_dir()

"""Keyword-guaranteed sampling on a tiny random model (the guarantee must not need a good model)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from generator.assemble import keyword_in_text  # noqa: E402
from generator.decoding import (  # noqa: E402
    KeywordGuide,
    KeywordLogitsProcessor,
    KeywordSchedule,
    SamplingSettings,
    bits_per_char,
    sample_batch,
    token_tables,
)
from generator.prompting import build_prompt, parse_generation  # noqa: E402
from tests.generator.tiny_story_model import build_tiny_model  # noqa: E402

KEYWORD_SETS = [
    ["dragon", "kite"],
    ["unicorn"],  # spelled letter by letter by the tiny BPE: exercises the forced continuation
    ["moon", "bear", "boat"],
    ["mouse"],
    ["teddy bear"],  # multi-word keyword
    ["owl", "garden"],
]
SETTINGS = SamplingSettings(max_new_tokens=90, target_new_tokens=60, no_repeat_ngram_size=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from generator.artifacts import load_model

    torch.set_num_threads(1)
    return load_model(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def _stories(raws) -> list[str]:  # type: ignore[no-untyped-def]
    """The text that would be stored: parsed, cleaned and cut at the last full sentence."""
    from generator.assemble import clean_text, cut_at_last_sentence

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
    greedy = SamplingSettings(temperature=0, max_new_tokens=30, target_new_tokens=25)
    short = [["owl"]]
    long = [["owl"], ["moon", "bear", "boat", "teddy bear"]]
    alone = sample_batch(
        tiny.model, tiny.tokenizer, [build_prompt(k) for k in short], short, greedy, seed=0
    )
    batched = sample_batch(
        tiny.model, tiny.tokenizer, [build_prompt(k) for k in long], long, greedy, seed=0
    )
    assert alone[0].token_ids == batched[0].token_ids


def test_schedule_staggers_keywords(tiny) -> None:  # type: ignore[no-untyped-def]
    tables = token_tables(tiny.tokenizer)
    settings = SamplingSettings(max_new_tokens=300, target_new_tokens=200)
    guide = KeywordGuide(
        tables, [["dragon", "kite", "moon"]], settings, KeywordSchedule(), in_story=[True]
    )
    row = guide.rows[0]
    row.story_tokens = 5
    assert [guide._bias(row, i) for i in range(3)] == [0.0, 0.0, 0.0]
    row.story_tokens = 60
    biases = [guide._bias(row, i) for i in range(3)]
    assert biases[0] > biases[1] > 0 and biases[2] == 0.0  # later keywords wait their turn
    row.story_tokens = 150
    assert all(guide._bias(row, i) > 0 for i in range(3))


def test_end_of_story_is_forbidden_while_a_keyword_is_missing(tiny) -> None:  # type: ignore[no-untyped-def]
    tables = token_tables(tiny.tokenizer)
    guide = KeywordGuide(tables, [["dragon"], []], SETTINGS, in_story=[True, True])
    for row in (0, 1):
        for token in tiny.tokenizer.encode(" The cat slept.", add_special_tokens=False):
            guide.observe(row, token)
    scores = torch.zeros((2, tables.vocab_size))
    scores[:, tables.eos_id] = 50.0
    guide.adjust(0, scores[0])
    guide.adjust(1, scores[1])
    assert scores[0, tables.eos_id] == float("-inf")
    assert scores[1, tables.eos_id] > 0  # no keywords: the story may end


def test_forced_word_is_completed_and_not_glued(tiny) -> None:  # type: ignore[no-untyped-def]
    """Once a boosted first token is sampled, the rest of the word and a boundary are forced."""
    tables = token_tables(tiny.tokenizer)
    settings = SamplingSettings(max_new_tokens=100, target_new_tokens=10)
    guide = KeywordGuide(tables, [["unicorn"]], settings, in_story=[True])
    for token in tiny.tokenizer.encode(" The bird sang a song to the", add_special_tokens=False):
        guide.observe(0, token)
    word = tiny.tokenizer.encode(" unicorn", add_special_tokens=False)
    assert len(word) > 1
    guide.observe(0, word[0])
    for expected in word[1:]:
        scores = torch.randn(tables.vocab_size)
        guide.adjust(0, scores)
        assert int(scores.argmax()) == expected
        assert torch.isinf(scores).sum() >= tables.vocab_size - 3
        guide.observe(0, expected)
    scores = torch.zeros(tables.vocab_size)
    guide.adjust(0, scores)
    letters = tables.word_continuation.nonzero().flatten().tolist()
    open_letters = {t for t in letters if not torch.isinf(scores[t])}
    trie = tables.trie("unicorn")
    assert open_letters == trie.children.get(tuple(word), set())  # "unicorns" yes, "unicornx" no
    guide.observe(0, tiny.tokenizer.encode(".", add_special_tokens=False)[0])
    assert guide.rows[0].satisfied == [True]


def test_works_as_a_logits_processor_in_generate(tiny) -> None:  # type: ignore[no-untyped-def]
    keywords = [["dragon", "kite"], ["owl"]]
    tokenizer = tiny.tokenizer
    tokenizer.padding_side = "left"
    batch = tokenizer([build_prompt(k) for k in keywords], return_tensors="pt", padding=True)
    processor = KeywordLogitsProcessor(
        tokenizer, keywords, SETTINGS, vocab_size=tiny.model.config.vocab_size
    )
    torch.manual_seed(0)
    out = tiny.model.generate(
        **batch,
        do_sample=True,
        top_k=0,
        max_new_tokens=SETTINGS.max_new_tokens,
        logits_processor=[processor],
        pad_token_id=tokenizer.pad_token_id,
    )
    width = batch["input_ids"].shape[1]
    for row, kws in enumerate(keywords):
        text = parse_generation(tokenizer.decode(out[row, width:])).text
        assert all(keyword_in_text(k, text) for k in kws), text


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
        SamplingSettings(max_new_tokens=400),
        seed=0,
        deadline=time.monotonic() + 0.05,
    )
    assert not raws[0].finished
    assert len(raws[0].token_ids) < 400


def test_model_dir_fixture_is_a_model(tiny) -> None:  # type: ignore[no-untyped-def]
    assert Path(tiny.path).is_dir()


def test_ct2_hybrid_is_used_only_while_it_pays_off() -> None:
    from generator.decoding import StoryGenerator

    gen = StoryGenerator.__new__(StoryGenerator)
    gen.adaptive, gen._batches = True, 0
    gen.stats = {"regenerated": 0, "ct2_sampled": 0}
    gen._cost = {"ct2": [], "hf": []}
    assert gen._ct2_pays_off()  # nothing measured yet: try it
    gen._cost = {"ct2": [0.05, 0.05], "hf": [0.3]}
    gen.stats = {"regenerated": 10, "ct2_sampled": 100}  # 10% misses: 0.05 + 0.03 < 0.3
    assert gen._ct2_pays_off()
    gen.stats = {"regenerated": 90, "ct2_sampled": 100}  # 90% misses: 0.05 + 0.27 > 0.3
    assert not gen._ct2_pays_off()


def test_ct2_engine_keeps_the_guarantee(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("ctranslate2")
    from generator.assemble import StoryConfig
    from generator.decoding import StoryGenerator

    config = StoryConfig(
        max_new_tokens=60,
        target_new_tokens=40,
        min_words=1,
        min_distinct_1=0,
        min_distinct_2=0,
        max_repetition_ratio=1,
    )
    gen = StoryGenerator(tiny.path, config, engine="ct2", threads=1)
    assert gen.engine == "ct2"
    stories = gen.generate([["dragon"], ["owl", "moon"]], seed=0)
    assert all(not s.quality["keywords_missing"] for s in stories)
    assert gen.stats["ct2_sampled"] == 2
    assert gen.stats.get("inserted", 0) > 0  # a random model misses: rewind-and-insert ran

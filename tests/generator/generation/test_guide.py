"""The keyword guide: staggered schedule, no end while a keyword is missing, forced words."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from generator.generation.assemble import keyword_in_text  # noqa: E402
from generator.generation.config import StoryConfig  # noqa: E402
from generator.generation.guide import (  # noqa: E402
    KeywordGuide,
    KeywordLogitsProcessor,
    token_tables,
)
from generator.prompting import build_prompt, parse_generation  # noqa: E402

SETTINGS = StoryConfig(
    max_new_tokens=90, target_new_tokens=60, no_repeat_ngram_size=3, min_story_tokens=0
)


def test_schedule_staggers_keywords(tiny) -> None:  # type: ignore[no-untyped-def]
    tables = token_tables(tiny.tokenizer)
    settings = StoryConfig(max_new_tokens=300, target_new_tokens=200, min_story_tokens=0)
    guide = KeywordGuide(tables, [["dragon", "kite", "moon"]], settings, in_story=[True])
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
    settings = StoryConfig(max_new_tokens=100, target_new_tokens=10, min_story_tokens=0)
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

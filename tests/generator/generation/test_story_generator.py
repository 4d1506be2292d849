"""The story generator: the CTranslate2 engine keeps the keyword guarantee, adaptively."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.generation.config import StoryConfig


def test_ct2_hybrid_is_used_only_while_it_pays_off() -> None:
    from generator.generation.story_generator import StoryGenerator

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
    from generator.generation.story_generator import StoryGenerator

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

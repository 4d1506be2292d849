"""The one story configuration: JSON overrides, strict keys, the live variant, torch-free."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from generator.generation.config import StoryConfig


def test_config_from_json(tmp_path: Path) -> None:
    path = tmp_path / "story.json"
    path.write_text(json.dumps({"temperature": 0.7, "min_words": 40}))
    config = StoryConfig.from_json(path)
    assert config.temperature == 0.7 and config.min_words == 40
    path.write_text(json.dumps({"temprature": 0.7}))
    with pytest.raises(ValueError, match="temprature"):
        StoryConfig.from_json(path)


def test_from_dict_round_trips_and_rejects_unknown_keys() -> None:
    config = StoryConfig(keyword_max_bias=2.5, wrap_up_tokens=10, title_in_prompt="model")
    assert StoryConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown story config keys: bogus"):
        StoryConfig.from_dict({"bogus": 1, "temperature": 0.5})


def test_frozen_and_replace() -> None:
    config = StoryConfig()
    with pytest.raises(FrozenInstanceError):
        config.temperature = 0.1  # type: ignore[misc]
    assert config.replace(temperature=0.5).temperature == 0.5
    assert config.temperature == 0.8


def test_live_variant_is_shorter_and_keeps_the_rest() -> None:
    base = StoryConfig(temperature=0.6, keyword_start=0.1)
    live = base.live()
    assert live.max_new_tokens < StoryConfig().max_new_tokens
    assert live.max_words < base.max_words
    assert (live.temperature, live.keyword_start) == (0.6, 0.1)


def test_every_knob_is_declared_once() -> None:
    """Sampling, keyword schedule and acceptance live in this one class (no duplicates)."""
    names = [f.name for f in fields(StoryConfig)]
    assert len(names) == len(set(names))
    for knob in ("temperature", "keyword_max_bias", "wrap_up_bias", "min_words"):
        assert knob in names


def test_config_and_assembly_do_not_import_torch() -> None:
    code = (
        "import sys; import generator.generation, generator.generation.config, "
        "generator.generation.assemble, generator.generation.ct2; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""Live storytelling: warm worker thread, deadline, safety gate, torch-free import."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from generator.generation.assemble import assemble_story
from generator.generation.config import StoryConfig
from generator.live import LiveStoryteller
from generator.prompting import END_TOKEN, STORY_TOKEN

STORY = (
    "Once upon a time a sleepy owl lived in an old oak tree at the edge of the meadow. Every "
    "night she watched the moon rise over the hills and sang a soft song to the stars. One "
    "evening a small rabbit came to listen. The owl smiled and sang a little louder, and soon "
    "the whole meadow was humming along. When the song was over, the rabbit yawned, the owl "
    "tucked her head under her wing, and everyone drifted off to sleep under the silver moon."
)


class FakeGenerator:
    def __init__(self, delay: float = 0.0, text: str = STORY) -> None:
        self.delay = delay
        self.text = text
        self.calls = 0

    def generate(self, keyword_sets: Any, seed: Any = None, deadline: Any = None) -> list[Any]:
        self.calls += 1
        if self.calls > 1:  # the first call is the warm-up
            time.sleep(self.delay)
        continuation = f" The Owl{STORY_TOKEN} {self.text}{END_TOKEN}"
        return [assemble_story(continuation, list(k), StoryConfig().live()) for k in keyword_sets]


def test_tells_an_approved_story() -> None:
    teller = LiveStoryteller("unused", deadline_s=2.0, generator_factory=FakeGenerator)
    try:
        assert teller.wait_ready(30)  # the warm-up loads the gate's models and word lists
        story = teller.tell(["owl", "moon"], timeout_s=2.0)
        assert story is not None and story.status == "approved"
        assert "owl" in story.text
    finally:
        teller.close()


def test_returns_none_past_the_deadline() -> None:
    teller = LiveStoryteller(
        "unused", deadline_s=5.0, generator_factory=lambda: FakeGenerator(delay=1.0)
    )
    try:
        assert teller.wait_ready(5)
        started = time.monotonic()
        assert teller.tell(["owl"], timeout_s=0.2) is None
        assert time.monotonic() - started < 0.5
    finally:
        teller.close()


def test_unsafe_or_bad_story_is_never_returned() -> None:
    unsafe = STORY.replace("sang a soft song", "killed a mouse")
    teller = LiveStoryteller("unused", generator_factory=lambda: FakeGenerator(text=unsafe))
    try:
        assert teller.tell(["owl"], timeout_s=2.0) is None
    finally:
        teller.close()


def test_retries_a_rejected_story_within_the_deadline() -> None:
    class Flaky(FakeGenerator):
        def generate(self, keyword_sets: Any, seed: Any = None, deadline: Any = None) -> list[Any]:
            stories = super().generate(keyword_sets, seed, deadline)
            if self.calls == 2:  # first real attempt (after the warm-up) is rejected
                stories[0].status = "rejected"
            return stories

    teller = LiveStoryteller("unused", generator_factory=Flaky)
    try:
        assert teller.wait_ready(30)
        story = teller.tell(["owl"], timeout_s=2.0)
        assert story is not None and story.status == "approved"
    finally:
        teller.close()


def test_load_failure_gives_none() -> None:
    teller = LiveStoryteller("/definitely/not/a/model", deadline_s=1.0)
    try:
        assert teller.tell(["owl"], timeout_s=3.0) is None
        assert not teller.ready
    finally:
        teller.close()


def test_real_tiny_model_answers_within_deadline(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tests.generator.tiny_story_model import build_tiny_model

    model_dir = build_tiny_model(tmp_path)
    teller = LiveStoryteller(model_dir, deadline_s=3.0, threads=1)
    try:
        assert teller.wait_ready(60)
        started = time.monotonic()
        story = teller.tell(["owl"], timeout_s=1.0)  # a random model's story is rejected: None
        assert time.monotonic() - started < 1.5
        assert story is None or story.status == "approved"
    finally:
        teller.close()


def test_a_live_story_with_a_made_up_word_is_rejected() -> None:
    """A child hears every word: live stories allow no made-up word (the catalogue's rule)."""
    continuation = f" The Owl{STORY_TOKEN} {STORY.replace('soft song', 'soft snowguin')}{END_TOKEN}"
    live = assemble_story(continuation, ["owl"], StoryConfig().live())
    assert live.status == "rejected"
    assert live.rejection_reason == "made-up words: snowguin"
    batch = assemble_story(continuation, ["owl"], StoryConfig())  # the batch gate is unchanged
    assert batch.status == "approved"

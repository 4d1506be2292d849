"""Generation asks the one safety gate (safety/): the same function, verdict type and lists."""

from __future__ import annotations

import safety.gate
from generator import safety as generator_safety


def test_generation_uses_the_safety_gate() -> None:
    assert generator_safety.check_story is safety.gate.check_story
    assert generator_safety.check_text is safety.gate.check_text
    assert generator_safety.SafetyVerdict is safety.gate.SafetyVerdict


def test_the_verdict_keeps_the_shape_generation_stores() -> None:
    verdict = generator_safety.check_story("The Gun", "A bunny slept.", meaning=False)
    assert not verdict.ok
    assert verdict.reason and verdict.reason.startswith("unsafe: weapons (gun)")
    record = verdict.as_dict()
    assert record["ok"] is False and record["reason"] == verdict.reason
    assert record["matches"] == [["weapons", "gun"]]
    assert record["checker"].endswith("+words-only")
    assert generator_safety.check_story("", "A bunny slept.", meaning=False).ok

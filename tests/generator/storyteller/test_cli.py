"""`bedtime storyteller ...` through the real top-level CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from skill.cli import LAZY_COMMANDS, main


def test_storyteller_is_mounted() -> None:
    assert LAZY_COMMANDS["storyteller"] == "generator.storyteller.cli:storyteller_group"


def test_storyteller_help() -> None:
    result = CliRunner().invoke(main, ["storyteller", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("prepare", "finetune", "tell"):
        assert command in result.output
    assert "unavailable" not in result.output


def test_prepare_help() -> None:
    result = CliRunner().invoke(main, ["storyteller", "prepare", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--wheel", "--model-dir", "--adapter", "--no-adapter", "--no-register"):
        assert option in result.output


def test_prepare_with_missing_wheel_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["storyteller", "prepare", "--wheel", str(tmp_path / "nope.whl")]
    )
    assert result.exit_code == 2
    assert "nope.whl" in result.output
    assert "does not exist" in result.output


def test_prepare_with_wrong_wheel_explains(tmp_path: Path) -> None:
    from generator.storyteller.prepare import WHEEL_SHA256

    wheel = tmp_path / "fake.whl"
    wheel.write_bytes(b"not a wheel")
    result = CliRunner().invoke(
        main,
        [
            "storyteller", "prepare", "--wheel", str(wheel), "--no-register",
            "--model-dir", str(tmp_path / "st"), "--no-adapter",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert f"expected {WHEEL_SHA256}" in result.output
    assert "Traceback" not in result.output


def test_tell_prints_story_and_verdict(storyteller_dir: Path) -> None:
    pytest.importorskip("ctranslate2")
    result = CliRunner().invoke(
        main,
        [
            "storyteller", "tell", "kite", "moon", "--model", str(storyteller_dir),
            "--length", "short", "--best-of", "2", "--seed", "3",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[rejected: " in result.output  # a random model's story, judged honestly
    assert "words;" in result.output


def test_tell_without_model_points_to_prepare(monkeypatch: pytest.MonkeyPatch) -> None:
    import generator.artifacts

    def not_found(path: str, session: object = None) -> Path:
        raise FileNotFoundError(f"{path!r} is neither a model directory nor a registered model")

    monkeypatch.setattr(generator.artifacts, "resolve_model_path", not_found)
    result = CliRunner().invoke(main, ["storyteller", "tell", "kite", "--model", "nowhere"])
    assert result.exit_code == 1
    assert "bedtime storyteller prepare" in result.output


def test_rejudge_keeps_passing_stories_and_says_why_others_fail(tmp_path: Path) -> None:
    import json

    story = (
        "Once upon a time, a little dragon named Pip lived on a green hill. Every morning Pip "
        "watched the children fly a red kite. One day the kite got stuck in a tall tree, and the "
        "dragon gently lifted it down. The children thanked him, and they all flew the kite "
        "together until the sun went down. Soon everyone was fast asleep. Good night, Pip."
    )
    good = {"title": "The Dragon and the Kite", "text": story, "keywords": ["dragon", "kite"]}
    drift = dict(good, text=story.replace("Good night, Pip.", "Good night, Pippa."))
    stutter = dict(good, title="Daily Daily Story")
    source = tmp_path / "stories.jsonl"
    source.write_text("".join(json.dumps(s) + "\n" for s in (good, drift, stutter)) + "{oops\n")
    out = tmp_path / "ok.jsonl"

    result = CliRunner().invoke(
        main, ["storyteller", "rejudge", str(source), "--passing-to", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert "1: ok" in result.output
    assert "2: rejected: names drift: Pip/Pippa" in result.output
    assert "3: rejected: title repeats a word" in result.output
    assert "4: unreadable line" in result.output
    assert "1 of 4 pass" in result.output
    assert [json.loads(line) for line in out.read_text().splitlines()] == [good]

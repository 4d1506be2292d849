"""``bedtime safety request|check`` for operators and scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from safety.cli import safety_group


@pytest.fixture(autouse=True)
def _words_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("safety.meaning.available", lambda: False)


def test_request_prints_allow_or_redirect_per_word() -> None:
    result = CliRunner().invoke(safety_group, ["request", "dragon", "guns", "poopy", "ghost"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "dragon\tallow",
        "guns\tredirect (weapons: guns)",
        "poopy\tredirect (potty: poopy)",
        "ghost\tallow",
    ]


def test_check_prints_one_verdict_per_line(tmp_path: Path) -> None:
    source = tmp_path / "lines.txt"
    source.write_text("The bunny slept.\n\nThe pirate had a pistol.\n", encoding="utf-8")
    result = CliRunner().invoke(safety_group, ["check", str(source)])
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == ["ok", "flagged: weapons (pistol)"]
    assert "1 of 2 flagged" in result.output


def test_check_reads_jsonl_stories_and_keeps_the_passing_ones(tmp_path: Path) -> None:
    stories = [
        {"title": "Moon", "text": "The moon glowed.\n\nEveryone slept.", "keywords": ["moon"]},
        {"title": "Fox", "text": "The fox played.\n\nThe fox was all alone.", "keywords": []},
    ]
    source = tmp_path / "catalogue.jsonl"
    source.write_text("".join(json.dumps(s) + "\n" for s in stories), encoding="utf-8")
    kept = tmp_path / "kept.jsonl"
    result = CliRunner().invoke(safety_group, ["check", str(source), "--passing-to", str(kept)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "ok" and lines[1].startswith("flagged: ending: frightening")
    assert [json.loads(line)["title"] for line in kept.read_text().splitlines()] == ["Moon"]
    as_json = CliRunner().invoke(safety_group, ["check", str(source), "--json"])
    first = json.loads(as_json.output.splitlines()[0])
    assert first["ok"] is True and first["checker"].endswith("+words-only")

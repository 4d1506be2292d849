"""``bedtime db|stories|keywords`` end to end on a temporary SQLite file (commits for real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from db.cli import db_group, keywords_group, stories_group
from db.engine import head_revision


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("BEDTIME_DATABASE_URL", database)
    return database


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return result.output


def test_full_curation_flow(runner: CliRunner, url: str, tmp_path: Path) -> None:
    assert f"revision {head_revision()}" in _ok(runner.invoke(db_group, ["upgrade"]))
    assert "matches the models" in _ok(runner.invoke(db_group, ["check"]))
    source = tmp_path / "stories.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"title": "Owl 🦉", "text": "Hoot.", "keywords": ["owls"]}),
                "{broken",
                json.dumps(
                    {"title": "Moon", "text": "Glow.", "keywords": ["moon"], "status": "approved"}
                ),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(stories_group, ["import", str(source)])
    out = _ok(result)
    assert "2 added, 0 already present, 1 invalid" in out
    assert f"{source}:2:" in out
    assert "1 invalid" in _ok(runner.invoke(stories_group, ["import", str(source)]))
    assert runner.invoke(stories_group, ["import", str(source), "--strict"]).exit_code == 1

    listing = _ok(runner.invoke(stories_group, ["list", "--status", "pending"]))
    assert "Owl 🦉" in listing and "Moon" not in listing
    owl_id = listing.split()[0]
    assert "approved" in _ok(runner.invoke(stories_group, ["approve", owl_id]))
    assert "Owl" in _ok(runner.invoke(stories_group, ["list", "--keyword", "owls"]))
    assert "rejected" in _ok(runner.invoke(stories_group, ["reject", owl_id, "--reason", "dull"]))
    missing = runner.invoke(stories_group, ["approve", "4242"])
    assert missing.exit_code == 1 and "no story with id 4242" in missing.output

    assert "now means 'owl'" in _ok(runner.invoke(keywords_group, ["add-synonym", "owl", "hooter"]))
    assert "hooter" in _ok(runner.invoke(keywords_group, ["list"]))
    assert "recomputed" in _ok(runner.invoke(keywords_group, ["recount"]))
    bad = runner.invoke(keywords_group, ["add-synonym", "owl", "owls"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output

    exported = tmp_path / "out.jsonl"
    _ok(runner.invoke(stories_group, ["export", str(exported)]))
    records = [json.loads(line) for line in exported.read_text("utf-8").splitlines()]
    assert {r["title"] for r in records} == {"Owl 🦉", "Moon"}
    assert "0 added" in _ok(runner.invoke(stories_group, ["import", str(exported)]))
    from db.catalogue import STARTER_CATALOGUE

    shipped = sum(1 for line in STARTER_CATALOGUE.read_text("utf-8").splitlines() if line.strip())
    added = _ok(runner.invoke(stories_group, ["import-starter"]))
    assert f"starter catalogue: {shipped} stories added" in added

    assert "base" in _ok(runner.invoke(db_group, ["downgrade", "base", "--yes"]))
    gone = runner.invoke(stories_group, ["list"])
    assert gone.exit_code == 1 and "bedtime db upgrade" in gone.output


@pytest.mark.parametrize(
    ("bad_url", "expected"),
    [
        ("mysql://root:hunter2@127.0.0.1/x", "mysql+pymysql://"),
        ("mysql+pymysql://root:hunter2@127.0.0.1:1/x", "Cannot connect"),
        ("not a url", "not valid"),
    ],
)
def test_bad_database_is_one_line_without_traceback(
    runner: CliRunner, bad_url: str, expected: str
) -> None:
    for group, args in [(db_group, ["upgrade"]), (stories_group, ["list"]), (db_group, ["check"])]:
        result = runner.invoke(group, [*args, "--database-url", bad_url])
        assert result.exit_code == 1
        assert expected in result.output
        assert "hunter2" not in result.output
        assert "Traceback" not in result.output
        assert result.output.strip().count("\n") == 0


@pytest.mark.parametrize(
    "args",
    [
        [db_group],
        [db_group, "upgrade"],
        [db_group, "downgrade"],
        [db_group, "check"],
        [stories_group],
        [stories_group, "import"],
        [stories_group, "export"],
        [stories_group, "list"],
        [stories_group, "approve"],
        [stories_group, "reject"],
        [keywords_group],
        [keywords_group, "list"],
        [keywords_group, "add-synonym"],
        [keywords_group, "recount"],
        [stories_group, "import-starter"],
    ],
)
def test_help_everywhere(runner: CliRunner, args: list) -> None:  # type: ignore[type-arg]
    group, *rest = args
    result = runner.invoke(group, [*rest, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_the_safety_gate_on_every_curation_path(
    runner: CliRunner, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Import holds a flagged approved story (unless --trust), approve needs --force, recheck
    withdraws what now fails, and every verdict is on the story's review trail."""
    monkeypatch.setattr("safety.meaning.available", lambda: False)  # the word layer suffices
    _ok(runner.invoke(db_group, ["upgrade"]))
    source = tmp_path / "stories.jsonl"
    lines = [
        {"title": "Moon", "text": "The moon glowed. Everyone slept.", "status": "approved"},
        {"title": "Bang", "text": "The fox found a gun. Then it slept.", "status": "approved"},
    ]
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    out = _ok(runner.invoke(stories_group, ["import", str(source)]))
    assert "1 held for review by the safety gate" in out
    assert f"{source}:2: held for review: unsafe: weapons (gun)" in out
    listing = _ok(runner.invoke(stories_group, ["list", "--status", "pending"]))
    assert "Bang" in listing and "Moon" not in listing
    bang_id = listing.split()[0]

    refused = runner.invoke(stories_group, ["approve", bang_id])
    assert refused.exit_code == 1
    assert "safety: flagged: weapons (gun)" in refused.output and "--force" in refused.output
    forced = _ok(runner.invoke(stories_group, ["approve", bang_id, "--force"]))
    assert "forced past the safety gate" in forced

    recheck = _ok(runner.invoke(stories_group, ["recheck", "--dry-run"]))
    assert "2 checked, 1 passed, 1 flagged, 1 withdrawn" in recheck and "dry run" in recheck
    recheck = _ok(runner.invoke(stories_group, ["recheck"]))
    assert f"withdrawn {bang_id} (Bang): unsafe: weapons (gun)" in recheck
    assert "weapons: 1" in recheck
    assert "Bang" in _ok(runner.invoke(stories_group, ["list", "--status", "withdrawn"]))
    trail = _ok(runner.invoke(stories_group, ["reviews", bang_id])).splitlines()
    assert [line.split()[2] for line in trail] == ["held", "checked", "forced", "withdrawn"]
    assert all("+words-only" in line for line in trail)

    trusted = tmp_path / "trusted.jsonl"
    trusted.write_text(
        json.dumps({"title": "Pow", "text": "A pistol. Sleep.", "status": "approved"}) + "\n"
    )
    assert "1 trusted despite the safety gate" in _ok(
        runner.invoke(stories_group, ["import", str(trusted), "--trust"])
    )

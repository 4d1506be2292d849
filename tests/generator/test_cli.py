import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def test_cli_module_does_not_import_torch() -> None:
    code = (
        "import sys, generator.cli as c; "
        "bad = [m for m in ('torch', 'transformers', 'tokenizers', 'peft', 'ctranslate2') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_commands_are_click_commands() -> None:
    from generator.cli import COMMANDS

    assert {c.name for c in COMMANDS} == {"prepare-data", "train", "eval", "export-ct2"}
    assert all(isinstance(c, click.Command) for c in COMMANDS)


def test_prepare_data_command(mini_corpus: Path, tmp_path: Path) -> None:
    from generator.cli import prepare_data

    result = CliRunner().invoke(
        prepare_data, ["--corpus", str(mini_corpus), "--out", str(tmp_path), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "9 stories" in result.output
    assert json.loads((tmp_path / "manifest.json").read_text())["n_stories"] == 9


def test_prepare_data_from_a_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    monkeypatch.chdir(tmp_path)  # no ../shared/corpus here: a catalogue needs none

    from generator.cli import prepare_data

    vocab = [
        "kite",
        "moon",
        "hill",
        "wind",
        "girl",
        "boy",
        "cloud",
        "string",
        "tree",
        "bird",
        "sun",
        "sky",
    ]

    def text(seed: int) -> str:  # distinct stories (the near-duplicate filter keeps them)
        rng = random.Random(seed)
        return " ".join(f"The {rng.choice(vocab)} saw a {rng.choice(vocab)}." for _ in range(20))

    lines = [{"title": f"Kite {i}", "text": text(i), "keywords": ["kite"]} for i in range(5)]
    catalogue = tmp_path / "cat.jsonl"
    catalogue.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    args = ["--catalogue", str(catalogue), "--out", str(tmp_path / "d"), "--val-permille", "0"]
    result = CliRunner().invoke(prepare_data, args)
    assert result.exit_code == 0, result.output
    assert "5 stories (5 train, 0 validation)" in result.output
    rows = [json.loads(x) for x in (tmp_path / "d" / "stories.jsonl").read_text().splitlines()]
    assert [r["keywords"] for r in rows] == [["kite"]] * 5
    both = CliRunner().invoke(prepare_data, [*args, "--source", "aesop"])
    assert both.exit_code != 0


def test_prepare_data_without_the_corpus_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generator.cli import prepare_data

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(prepare_data, ["--out", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "'--corpus'" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_eval_command_writes_report(
    tiny_model,
    tiny_tokenizer,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    mini_dataset: Path,
) -> None:
    from generator.artifacts import read_meta, save_model
    from generator.cli import evaluate

    model_dir = save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {})
    text = tmp_path / "held_out.txt"
    text.write_text("The fox slept.\n<|endoftext|>\nThe moon rose.\n")
    result = CliRunner().invoke(
        evaluate,
        [str(model_dir), "--text-file", str(text), "--max-new-tokens", "5", "--threads", "1"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((model_dir / "eval_report.json").read_text())
    assert report["bpc"]["n_documents"] == 2 and report["bpc"]["bits_per_char"] > 0
    assert (
        read_meta(model_dir)["evaluation"]["bpc"]["bits_per_char"] == report["bpc"]["bits_per_char"]
    )


def test_eval_of_a_shipped_model_leaves_tracked_files_alone(
    tiny_model,
    tiny_tokenizer,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from generator import cli
    from generator.artifacts import read_meta, save_model

    assert cli.is_shipped(Path(cli.__file__).parent / "shipped_model")
    assert not cli.is_shipped(tmp_path)
    model_dir = save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {})
    before = read_meta(model_dir)
    monkeypatch.setattr(cli, "is_shipped", lambda path: True)  # as if it lived in the repo
    text = tmp_path / "held_out.txt"
    text.write_text("The fox slept.\n<|endoftext|>\nThe moon rose.\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = [str(model_dir), "--text-file", str(text), "--max-new-tokens", "5", "--threads", "1"]
    result = CliRunner().invoke(cli.evaluate, args)
    assert result.exit_code == 0, result.output
    assert (work / "eval_report.json").exists()
    assert not (model_dir / "eval_report.json").exists()
    assert read_meta(model_dir) == before

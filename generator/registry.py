"""Register trained models in the store's models registry (``db.models.ModelRecord``).

The queries belong to the store (:mod:`db.generation_jobs`); this module only turns a saved
model directory (its ``bedtime_model.json``) into a registry row. ``db`` is imported lazily so
importing this module needs no database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generator.artifacts import read_meta


def register_model(
    session: Any,
    model_dir: str | Path,
    name: str,
    model_class: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Any:
    """Add (or update, by name) a ``ModelRecord`` for a saved model directory.

    Missing fields come from the directory's ``bedtime_model.json``. The caller owns the
    transaction (commit/rollback), as everywhere in the store.
    """
    from db.generation_jobs import save_model_record

    meta = read_meta(model_dir)
    return save_model_record(
        session,
        name,
        model_class=model_class or meta.get("model_class", "GPT2LMHeadModel"),
        hyperparameters=hyperparameters
        if hyperparameters is not None
        else meta.get("hyperparameters", {}),
        artifact_path=str(Path(model_dir).resolve()),
        metrics=metrics if metrics is not None else meta.get("metrics", {}),
    )


def lookup_artifact_path(name: str, session: Any = None) -> str | None:
    """Artifact directory of a registered model name (None when unknown).

    Without a session, opens one on the configured store for the lookup.
    """
    from db.generation_jobs import model_artifact_path

    return model_artifact_path(name, session=session)

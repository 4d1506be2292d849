"""Register trained models in the store's ``models`` table (``db.models.ModelRecord``).

``db`` belongs to the store; it is imported lazily so the generator works (and its tests run)
without a database, and so importing this module never needs SQLAlchemy models to exist.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from generator.artifacts import read_meta

logger = logging.getLogger(__name__)


def _model_record_class() -> Any:
    from db.models import ModelRecord  # type: ignore[import-not-found]

    return ModelRecord


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
    from sqlalchemy import select

    record_cls = _model_record_class()
    meta = read_meta(model_dir)
    values = {
        "model_class": model_class or meta.get("model_class", "GPT2LMHeadModel"),
        "hyperparameters": hyperparameters
        if hyperparameters is not None
        else meta.get("hyperparameters", {}),
        "artifact_path": str(Path(model_dir).resolve()),
        "metrics": metrics if metrics is not None else meta.get("metrics", {}),
    }
    record = session.scalars(select(record_cls).where(record_cls.name == name)).first()
    if record is None:
        record = record_cls(name=name, **values)
        session.add(record)
    else:
        for key, value in values.items():
            setattr(record, key, value)
    session.flush()
    logger.info("registered model %s -> %s", name, values["artifact_path"])
    return record


def lookup_artifact_path(name: str, session: Any = None) -> str | None:
    """Artifact directory of a registered model name (None when unknown).

    Without a session, opens one on the configured store (``db.settings``) for the lookup.
    """
    from sqlalchemy import select

    try:
        record_cls = _model_record_class()
    except ImportError:
        return None
    if session is not None:
        record = session.scalars(select(record_cls).where(record_cls.name == name)).first()
        return None if record is None else str(record.artifact_path)
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from db.engine import make_engine

    engine = make_engine()
    try:
        with Session(engine) as own_session:
            return lookup_artifact_path(name, session=own_session)
    except SQLAlchemyError as exc:  # no store / not migrated: the name cannot be resolved
        logger.warning("model registry lookup for %r failed: %s", name, exc)
        return None
    finally:
        engine.dispose()

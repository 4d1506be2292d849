"""Registry hook against the store's ModelRecord (db.models belongs to a colleague)."""

from pathlib import Path

import pytest

pytest.importorskip("db.models", reason="db.models (ModelRecord) is not available yet")

from generator.artifacts import atomic_write_json, load_model
from generator.registry import lookup_artifact_path, register_model


def test_register_and_look_up(db_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    atomic_write_json(
        tmp_path / "bedtime_model.json",
        {
            "model_class": "GPT2LMHeadModel",
            "metrics": {"bpc": 0.9},
            "hyperparameters": {"block_size": 256},
        },
    )
    record = register_model(db_session, tmp_path, "story-small-v1")
    assert record.id is not None
    assert record.metrics == {"bpc": 0.9}
    assert record.hyperparameters == {"block_size": 256}
    assert lookup_artifact_path("story-small-v1", session=db_session) == str(tmp_path.resolve())
    again = register_model(db_session, tmp_path, "story-small-v1", metrics={"bpc": 0.8})
    assert again.id == record.id and again.metrics == {"bpc": 0.8}
    assert lookup_artifact_path("unknown", session=db_session) is None


def test_load_model_by_registry_name(
    db_session,
    tiny_model,
    tiny_tokenizer,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from generator.artifacts import save_model

    save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {"model_class": "GPT2LMHeadModel"})
    register_model(db_session, tmp_path / "m", "tiny-registered")
    loaded = load_model("tiny-registered", session=db_session)
    assert loaded.path == (tmp_path / "m").resolve()

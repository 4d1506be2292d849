"""CTranslate2 glue: export, config fix, greedy parity with transformers."""

from pathlib import Path

import pytest

pytest.importorskip("ctranslate2")


@pytest.mark.slow
def test_ct2_export_and_generate(tiny_model, tiny_tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from generator.artifacts import read_meta, save_model
    from generator.generation.ct2 import ct2_generate, export_ct2
    from generator.prompting import build_prompt

    model_dir = save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {})
    target = export_ct2(model_dir)
    assert target == model_dir / "ct2" and (target / "model.bin").exists()
    assert read_meta(model_dir)["ct2"]["quantization"] == "int8"
    text = ct2_generate(target, model_dir, build_prompt(["fox"]), max_length=8)
    assert isinstance(text, str)


@pytest.mark.slow
def test_ct2_greedy_matches_transformers(tiny_model, tiny_tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """int8 may drift, so compare float32 greedy decoding token by token."""
    import ctranslate2
    import torch

    from generator.artifacts import save_model
    from generator.generation.ct2 import export_ct2
    from generator.prompting import build_prompt

    model_dir = save_model(tiny_model, tiny_tokenizer, tmp_path / "m", {})
    target = export_ct2(model_dir, quantization="float32", out_dir=tmp_path / "ct2")
    ids = tiny_tokenizer(build_prompt(["fox"]), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        hf = (
            tiny_model.eval()
            .generate(
                torch.tensor([ids]),
                do_sample=False,
                max_new_tokens=6,
                min_new_tokens=6,
                pad_token_id=0,
            )[0, len(ids) :]
            .tolist()
        )
    generator = ctranslate2.Generator(str(target), device="cpu")
    result = generator.generate_batch(
        [tiny_tokenizer.convert_ids_to_tokens(ids)],
        max_length=6,
        sampling_topk=1,
        include_prompt_in_result=False,
        min_length=6,
    )
    assert result[0].sequences_ids[0] == hf


def test_fix_ct2_config_fills_null_tokens(tmp_path: Path) -> None:
    import json

    from generator.generation.ct2 import fix_ct2_config

    path = tmp_path / "config.json"
    path.write_text(
        json.dumps({"eos_token": "<|e|>", "unk_token": None, "layer_norm_epsilon": None})
    )
    fix_ct2_config(tmp_path)
    fixed = json.loads(path.read_text())
    assert fixed == {"eos_token": "<|e|>", "unk_token": "<|e|>", "bos_token": "<|e|>"}
    fix_ct2_config(tmp_path)  # idempotent
    assert json.loads(path.read_text()) == fixed

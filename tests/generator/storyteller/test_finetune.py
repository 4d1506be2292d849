"""The storyteller's LoRA fine-tune on a tiny model: example encoding, a 2-step run, the
keyword loss path and the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from generator.storyteller import finetune as ft
from generator.storyteller.finetune import Example, FinetuneConfig, encode_example
from generator.storyteller.prompts import chat_messages, format_reply

EXAMPLE = Example(
    source="test",
    keywords=("kite", "moon"),
    length="short",
    title="The Kite and the Moon",
    text="A little kite flew up to the moon. The moon smiled and sang a song.",
)


def _examples(n: int = 10) -> list[Example]:
    animals = ["owl", "bear", "bunny", "dragon", "mouse", "cat", "dog", "fish", "kite", "boat"]
    return [
        Example(
            source=f"tiny-{i}",
            keywords=(animal,),
            length="short",
            title=f"The {animal.title()}",
            text=f"Once upon a time a little {animal} went to sleep. Everyone was happy.",
        )
        for i, animal in zip(range(n), animals * 3, strict=False)
    ]


def _prompt_ids(tokenizer: Any, example: Example) -> list[int]:
    ids = tokenizer.apply_chat_template(
        chat_messages(example.keywords, example.length), add_generation_prompt=True
    )
    return list(ids if isinstance(ids, list) else ids["input_ids"])


def test_encode_example_masks_exactly_the_prompt(tiny_tokenizer_st: Any) -> None:
    tok = tiny_tokenizer_st
    encoded = encode_example(tok, EXAMPLE, max_tokens=10_000)
    prompt = _prompt_ids(tok, EXAMPLE)
    ids, labels = encoded["input_ids"], encoded["labels"]
    assert ids[: len(prompt)] == prompt
    assert len(labels) == len(ids) > len(prompt)
    assert labels[: len(prompt)] == [-100] * len(prompt)
    assert labels[len(prompt) :] == ids[len(prompt) :]
    assert -100 not in labels[len(prompt) :]
    assert ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    reply = tok.decode(ids[len(prompt) :])
    assert reply == format_reply(EXAMPLE.title, EXAMPLE.text) + "<|im_end|>"
    assert tok.decode(prompt).endswith("<|im_start|>assistant\n")


def test_encode_example_keyword_ids(tiny_tokenizer_st: Any) -> None:
    tok = tiny_tokenizer_st
    encoded = encode_example(tok, EXAMPLE, max_tokens=10_000)
    expected = sorted({tok.encode(" kite", add_special_tokens=False)[0], tok.encode(" moon")[0]})
    assert encoded["keyword_ids"] == expected


def test_encode_example_truncates(tiny_tokenizer_st: Any) -> None:
    tok = tiny_tokenizer_st
    n_prompt = len(_prompt_ids(tok, EXAMPLE))
    encoded = encode_example(tok, EXAMPLE, max_tokens=n_prompt + 3)
    assert len(encoded["input_ids"]) == len(encoded["labels"]) == n_prompt + 3
    assert encoded["labels"][n_prompt:] == encoded["input_ids"][n_prompt:]
    only_prompt = encode_example(tok, EXAMPLE, max_tokens=n_prompt - 2)
    assert len(only_prompt["input_ids"]) == n_prompt - 2
    assert set(only_prompt["labels"]) == {-100}


def _config(tmp_path: Path, **changes: Any) -> FinetuneConfig:
    settings: dict[str, Any] = {
        "out_dir": str(tmp_path / "run"),
        "max_steps": 2,
        "grad_accum": 1,
        "eval_examples": 2,
        "lora_first_layer": 0,
        "lora_r": 4,
        "lora_alpha": 8,
        "threads": 1,
        "max_tokens": 96,
    }
    return FinetuneConfig(**{**settings, **changes})


def _lora_weights(adapter_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def test_finetune_two_steps(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ft, "build_examples", lambda config: _examples())
    adapter = ft.finetune(tiny_base, _config(tmp_path))
    assert adapter == tmp_path / "run" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "adapter_config.json").is_file()
    record = json.loads((adapter / "training_record.json").read_text())
    assert record["steps"] == 2
    assert record["examples_seen"] == 2
    assert record["train_examples"] == 8
    for key in ("held_out_reply_loss_before", "held_out_reply_loss_after"):
        assert isinstance(record[key], float)
        assert 0 < record[key] < 20  # ~ln(400) for a random model
    assert record["config"]["max_steps"] == 2
    assert record["tokens"] > 0
    weights = _lora_weights(adapter)
    layers = {name.split(".layers.")[1].split(".")[0] for name in weights}
    assert layers == {"0", "1"}  # lora_first_layer=0: every layer adapted
    assert any(name.endswith("gate_proj.lora_A.weight") for name in weights)


def test_finetune_top_layers_only(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ft, "build_examples", lambda config: _examples())
    adapter = ft.finetune(tiny_base, _config(tmp_path, max_steps=1, lora_first_layer=1))
    layers = {name.split(".layers.")[1].split(".")[0] for name in _lora_weights(adapter)}
    assert layers == {"1"}


def test_finetune_with_keyword_loss_trains(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(ft, "build_examples", lambda config: _examples())
    adapter = ft.finetune(tiny_base, _config(tmp_path, keyword_loss_weight=1.0))
    record = json.loads((adapter / "training_record.json").read_text())
    assert record["steps"] == 2
    assert record["config"]["keyword_loss_weight"] == 1.0
    lora_b = [w for name, w in _lora_weights(adapter).items() if "lora_B" in name]
    assert lora_b
    # LoRA B starts at zero: non-zero B weights mean the optimizer updated the adapter
    assert any(torch.count_nonzero(w) > 0 for w in lora_b)


def test_keyword_loss_adds_a_gradient(tiny_base: Path, tiny_tokenizer_st: Any) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
    )
    item = encode_example(tiny_tokenizer_st, EXAMPLE, max_tokens=96)
    plain, lm_only = ft._loss(model, item, 0.0)
    assert plain is lm_only
    total, lm = ft._loss(model, item, 1.0)
    assert torch.allclose(lm, plain)
    keyword_part = total - lm
    assert keyword_part.item() > 0
    keyword_part.backward()
    grads = [p.grad for name, p in model.named_parameters() if "lora_B" in name]
    assert grads and all(g is not None for g in grads)
    assert any(torch.count_nonzero(g) > 0 for g in grads)
    no_keywords = {**item, "keyword_ids": []}
    total, lm = ft._loss(model, no_keywords, 1.0)
    assert total is lm


def test_adapter_merges_into_the_base(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generator.storyteller.prepare import merge_adapter

    monkeypatch.setattr(ft, "build_examples", lambda config: _examples())
    adapter = ft.finetune(tiny_base, _config(tmp_path, max_steps=1))
    merged = merge_adapter(tiny_base, adapter, tmp_path / "merged")
    assert (merged / "model.safetensors").is_file()
    assert (merged / "tokenizer_config.json").is_file()


def test_main_parses_config_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, FinetuneConfig]] = []
    monkeypatch.setattr(ft, "finetune", lambda base, config: seen.append((base, config)) or "ok")
    ft.main(["base", "--max-steps", "3", "--keyword-loss-weight", "0.5", "--out-dir", "x"])
    ((base, config),) = seen
    assert base == "base"
    assert config.max_steps == 3
    assert config.keyword_loss_weight == 0.5
    assert config.out_dir == "x"
    assert config.lora_r == FinetuneConfig().lora_r


def test_batches_are_padded_and_masked(tiny_tokenizer_st: Any) -> None:
    short = encode_example(tiny_tokenizer_st, EXAMPLE, max_tokens=40)
    long = encode_example(tiny_tokenizer_st, EXAMPLE, max_tokens=60)
    batch = ft.collate([short, long], pad_id=0)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert batch["input_ids"].shape == (2, len(long["input_ids"]))
    width = len(short["input_ids"])
    assert batch["attention_mask"][0, :width].all() and not batch["attention_mask"][0, width:].any()
    assert (batch["labels"][0, width:] == -100).all()
    assert batch["labels"][1].tolist() == long["labels"]


def test_a_padded_batch_loses_what_its_examples_lose(
    tiny_base: Path, tiny_tokenizer_st: Any
) -> None:
    """Padding changes nothing: a batch's loss is its examples' reply tokens, nothing else."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    items = [encode_example(tiny_tokenizer_st, e, max_tokens=96) for e in _examples(3)]
    items.append(encode_example(tiny_tokenizer_st, EXAMPLE, max_tokens=96))
    with torch.no_grad():
        together = float(ft._loss(model, items, 0.0, pad_id=0)[1])
        tokens = [sum(label != -100 for label in item["labels"][1:]) for item in items]
        alone = [float(ft._loss(model, item, 0.0)[1]) for item in items]
    expected = sum(loss * n for loss, n in zip(alone, tokens, strict=True)) / sum(tokens)
    assert together == pytest.approx(expected, rel=1e-4)


def test_finetune_in_batches(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ft, "build_examples", lambda config: _examples())
    adapter = ft.finetune(tiny_base, _config(tmp_path, batch_size=3))
    record = json.loads((adapter / "training_record.json").read_text())
    assert record["examples_seen"] == 6
    assert record["device"] == "cpu"


def test_full_finetune_writes_a_model_prepare_can_use(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU route (--full), run on the CPU with the tiny model: every weight trains."""
    from safetensors.torch import load_file

    monkeypatch.setattr(ft, "build_examples", lambda config: _examples())
    saved = ft.finetune(tiny_base, _config(tmp_path, full=True, batch_size=2, learning_rate=1e-2))
    assert saved == tmp_path / "run" / "model"
    assert (saved / "config.json").is_file() and (saved / "tokenizer_config.json").is_file()
    record = json.loads((saved / "training_record.json").read_text())
    assert record["config"]["full"] is True and record["steps"] == 2
    before = load_file(str(tiny_base / "model.safetensors"))
    after = load_file(str(saved / "model.safetensors"))
    changed = [name for name in before if name in after and not before[name].equal(after[name])]
    assert len(changed) > len(before) // 2  # not an adapter: the weights themselves moved


def test_keyword_loss_needs_one_example_a_step(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch-size 1"):
        ft.finetune(tiny_base, _config(tmp_path, keyword_loss_weight=1.0, batch_size=4))


def test_a_gpu_asked_for_and_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ft.pick_device("auto") == "cpu"
    with pytest.raises(ValueError, match="no GPU"):
        ft.pick_device("cuda")


def test_main_parses_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[FinetuneConfig] = []
    monkeypatch.setattr(ft, "finetune", lambda base, config: seen.append(config) or "ok")
    ft.main(["base", "--full", "--batch-size", "16", "--device", "cuda"])
    assert seen[0].full is True and seen[0].batch_size == 16 and seen[0].device == "cuda"
    ft.main(["base"])
    assert seen[1].full is False

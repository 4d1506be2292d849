import pytest
import torch

from generator.keyword_loss import keyword_loss
from generator.modeling import PRESETS, apply_lora, build_from_scratch, count_params


def test_presets_build_with_tokenizer_vocab(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = build_from_scratch("tiny", tiny_tokenizer)
    assert model.config.vocab_size == len(tiny_tokenizer)
    assert model.config.n_layer == PRESETS["tiny"].n_layer
    # tied embeddings counted once
    assert count_params(model) < sum(p.numel() for p in model.parameters()) + 1
    with pytest.raises(ValueError):
        build_from_scratch("enormous", tiny_tokenizer)


def test_lora_trains_adapters_only(tiny_model, tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    peft_model = apply_lora(tiny_model, r=2, alpha=4)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable)
    assert not any("c_fc.base_layer" in n for n in trainable)
    ids = tiny_tokenizer("the fox", return_tensors="pt")["input_ids"]
    logits = peft_model(input_ids=ids).logits
    loss = keyword_loss(
        logits, torch.tensor([[ids[0, -1].item()]]), torch.ones_like(ids, dtype=torch.bool)
    )
    loss.backward()
    grads = [p.grad for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None for g in grads)
    merged = peft_model.merge_and_unload()
    assert merged(input_ids=ids).logits.shape == logits.shape

"""The keyword loss must be differentiable (the reference's was not) and mean what it says."""

import math

import pytest
import torch

from generator.keyword_loss import keyword_loss


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11, requires_grad=True)
    keyword_ids = torch.tensor([[3, 7], [4, -1]])
    story_mask = torch.tensor([[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=torch.bool)
    return logits, keyword_ids, story_mask


@pytest.mark.parametrize("mode", ["any", "max", "mean", "cosine"])
def test_gradient_flows_only_through_story_positions(mode: str) -> None:
    logits, keyword_ids, story_mask = _inputs()
    embeddings = torch.randn(11, 4, requires_grad=True)
    loss = keyword_loss(logits, keyword_ids, story_mask, mode, embeddings=embeddings)
    loss.backward()
    assert logits.grad is not None
    assert logits.grad[story_mask].abs().sum() > 0
    assert logits.grad[~story_mask].abs().sum() == 0


def test_any_matches_noisy_or_by_hand() -> None:
    logits, keyword_ids, story_mask = _inputs()
    p = torch.softmax(logits.detach(), -1)
    expected = []
    for b, kws in enumerate(keyword_ids.tolist()):
        for k in kws:
            if k < 0:
                continue
            none = math.prod(1 - float(p[b, t, k]) for t in range(5) if story_mask[b, t])
            expected.append(-math.log(1 - none))
    got = keyword_loss(logits, keyword_ids, story_mask, "any")
    assert float(got.detach()) == pytest.approx(sum(expected) / len(expected), rel=1e-5)


def test_loss_falls_when_keyword_becomes_likely() -> None:
    logits, keyword_ids, story_mask = _inputs()
    before = float(keyword_loss(logits, keyword_ids, story_mask))
    boosted = logits.detach().clone()
    boosted[0, 1, 3] += 10
    boosted[0, 2, 7] += 10
    boosted[1, 3, 4] += 10
    assert float(keyword_loss(boosted, keyword_ids, story_mask)) < before / 5


def test_no_keywords_gives_zero_attached_loss() -> None:
    logits, _, story_mask = _inputs()
    loss = keyword_loss(logits, torch.full((2, 1), -1), story_mask)
    assert float(loss) == 0.0
    loss.backward()  # still part of the graph


def test_keyword_term_alone_trains_a_model(tiny_model, tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """An optimizer step on the keyword loss alone changes the weights and lowers it."""
    from generator.prompting import build_prompt

    ids = tiny_tokenizer(build_prompt(["fox"]) + " the little", return_tensors="pt")["input_ids"]
    keyword_ids = torch.tensor([tiny_tokenizer(" fox", add_special_tokens=False)["input_ids"]])
    story_mask = torch.zeros_like(ids, dtype=torch.bool)
    story_mask[0, -3:] = True
    optimizer = torch.optim.SGD(tiny_model.parameters(), lr=0.05)
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    losses = []
    for _ in range(3):
        loss = keyword_loss(tiny_model(input_ids=ids).logits, keyword_ids, story_mask)
        optimizer.zero_grad()
        loss.backward()
        grad_norm = sum(
            float(p.grad.abs().sum()) for p in tiny_model.parameters() if p.grad is not None
        )
        assert grad_norm > 0
        optimizer.step()
        losses.append(loss.item())
    changed = [n for n, p in tiny_model.named_parameters() if not torch.equal(p, before[n])]
    assert "transformer.wte.weight" in changed and len(changed) > 5
    assert losses[-1] < losses[0]

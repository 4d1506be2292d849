"""Differentiable keyword losses: make the story mention the prompt's keywords.

The reference computed its keyword term under ``no_grad`` on argmax tokens, so it never trained
anything. Here every variant is a smooth function of the logits, shaped like nanoGPT's
``forward(idx, targets)``: pass logits plus targets, get a scalar loss.

Shapes: ``logits`` (B, T, V); ``keyword_ids`` (B, K) token ids padded with -1; ``story_mask``
(B, T) true where position t predicts a story token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def keyword_token_logprobs(logits: torch.Tensor, keyword_ids: torch.Tensor) -> torch.Tensor:
    """log p_t(k) for every position t and keyword token k: (B, T, K), float32."""
    logits = logits.float()
    log_norm = torch.logsumexp(logits, dim=-1, keepdim=True)  # (B, T, 1)
    index = keyword_ids.clamp(min=0).unsqueeze(1).expand(-1, logits.size(1), -1)
    return torch.gather(logits, 2, index) - log_norm


def keyword_loss(
    logits: torch.Tensor,
    keyword_ids: torch.Tensor,
    story_mask: torch.Tensor,
    mode: str = "any",
    embeddings: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over (example, keyword token) pairs of a bag-of-words keyword loss.

    - ``any``: -log P(token appears at least once) with independent positions (noisy-OR),
      i.e. -log(1 - prod_t (1 - p_t)). Rewards one confident mention, not repetition.
    - ``max``: -max_t log p_t.   - ``mean``: -log mean_t p_t.
    - ``cosine``: 1 - max_t cos(E_p[e], e_k), expected output embedding vs the keyword's
      embedding (the seed's ``cos_similarity``); needs ``embeddings`` (V, D).
    Returns 0 (still attached to the graph) when a batch has no keywords.
    """
    valid_kw = keyword_ids >= 0  # (B, K)
    mask = story_mask.bool()
    pair_mask = valid_kw & mask.any(dim=1, keepdim=True)
    if not pair_mask.any():
        return logits.sum() * 0.0
    if mode == "cosine":
        if embeddings is None:
            raise ValueError("cosine keyword loss needs the output embedding matrix")
        probs = F.softmax(logits.float(), dim=-1)  # (B, T, V)
        expected = probs @ embeddings.float()  # (B, T, D)
        targets = embeddings.float()[keyword_ids.clamp(min=0)]  # (B, K, D)
        cos = F.cosine_similarity(expected.unsqueeze(2), targets.unsqueeze(1), dim=-1)  # B,T,K
        cos = cos.masked_fill(~mask.unsqueeze(-1), -1.0)
        per_pair = 1.0 - cos.max(dim=1).values
    else:
        logp = keyword_token_logprobs(logits, keyword_ids)  # (B, T, K)
        if mode == "max":
            per_pair = -logp.masked_fill(~mask.unsqueeze(-1), -1e4).max(dim=1).values
        elif mode == "mean":
            n = mask.sum(dim=1, keepdim=True).clamp(min=1).float()  # (B, 1)
            lse = torch.logsumexp(logp.masked_fill(~mask.unsqueeze(-1), -1e4), dim=1)
            per_pair = -(lse - torch.log(n))
        elif mode == "any":
            # log(1 - p) computed stably; sum over story positions = log P(never emitted).
            log_not = torch.log1p(-logp.exp().clamp(max=1 - 1e-6))
            log_none = (log_not * mask.unsqueeze(-1)).sum(dim=1).clamp(max=-1e-6)  # (B, K)
            per_pair = -torch.log(-torch.expm1(log_none))
        else:
            raise ValueError(f"unknown keyword loss mode {mode!r}")
    return per_pair[pair_mask].mean()

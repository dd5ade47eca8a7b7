"""Loss aggregation over tokens. Pure: torch only."""

from __future__ import annotations

import torch


def token_mean(loss: torch.Tensor, mask: torch.Tensor, num_tokens: float | None = None) -> torch.Tensor:
    """DAPO's token-mean (arXiv 2503.14476): sum(M * loss) / sum(M).

    loss, mask: (B, T). `num_tokens` overrides the denominator: a data-parallel learner passes the
    token count of the whole global batch so that every rank's gradient has the same scale and
    their average equals the token mean over the global batch.
    """
    denom = mask.sum() if num_tokens is None else torch.as_tensor(num_tokens, dtype=loss.dtype)
    return (loss * mask).sum() / denom.clamp_min(1)

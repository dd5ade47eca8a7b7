"""Policy-gradient losses. Pure: torch only, explicit scalars, per-token outputs.

Every loss returns the per-token loss (B, T) and per-token diagnostics; aggregation over tokens
is a separate step (`aggregation.py`), so losses and aggregation modes combine freely.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PolicyLossOutput:
    loss: torch.Tensor
    """(B, T) per-token loss, not yet masked or aggregated."""
    clipped: torch.Tensor
    """(B, T) bool: the token's gradient was zeroed by the clip."""
    ratio: torch.Tensor
    """(B, T) r = exp(logp - logp_old)."""


def ppo_clip_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float,
) -> PolicyLossOutput:
    """PPO-clip with decoupled bounds ("clip-higher", DAPO arXiv 2503.14476).

    l = max(-A * r, -A * clip(r, 1 - clip_low, 1 + clip_high)). All inputs (B, T); `advantages`
    is the response's advantage repeated over its tokens. With clip_low == clip_high this is the
    original PPO objective (arXiv 1707.06347).
    """
    ratio = torch.exp(logp - logp_old)
    unclipped = -advantages * ratio
    clipped_ratio = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    clipped = -advantages * clipped_ratio
    loss = torch.maximum(unclipped, clipped)
    return PolicyLossOutput(loss=loss, clipped=clipped > unclipped, ratio=ratio)

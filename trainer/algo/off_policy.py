"""The correction for samples an older policy generated (asynchronous rollouts). Pure: torch only.

With `generation.max_staleness` > 0 the engines generate step t+1 while the learner trains on
step t, so a sample may come from a policy `lag` updates older than the learner's. The PPO ratio
is taken against the learner's own (proximal) log-probs, as in decoupled PPO (AReaL, arXiv
2505.24298); the behaviour policy's share is the importance weight

    w_t = pi_learner(y_t) / pi_engine(y_t) = exp(logp_learner - logp_engine),

which multiplies each token's policy loss. `tis` truncates it at `cap` (truncated importance
sampling, Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL
training"; verl's rollout correction); `mask` keeps w = 1 but drops the tokens whose w leaves
[1/cap, cap] (masked importance sampling, as IcePop does); `none` trains on them as if on-policy.
Rows with lag 0 are left as they are: at `max_staleness` 0 the loop is exactly the on-policy one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Correction = Literal["tis", "mask", "none"]
CORRECTIONS: tuple[str, ...] = ("tis", "mask", "none")


@dataclass
class BehaviourWeights:
    weights: torch.Tensor
    """(B, T) the factor on each token's policy loss (1 on fresh rows and outside the mask)."""
    stale: torch.Tensor
    """(B, T) bool: response tokens of rows some older policy generated."""
    truncated: torch.Tensor
    """(B, T) bool: stale tokens whose weight was capped (tis) or that were dropped (mask)."""
    raw: torch.Tensor
    """(B, T) the untruncated importance weight on stale tokens (1 elsewhere)."""


def behaviour_weights(
    logp: torch.Tensor,
    logp_engine: torch.Tensor,
    mask: torch.Tensor,
    lag: torch.Tensor,
    *,
    correction: Correction = "tis",
    cap: float = 2.0,
) -> BehaviourWeights:
    """Per-token weights for the policy loss. logp (detached learner log-probs), logp_engine,
    mask: (B, T); lag: (B,) how many updates older than the learner each row's policy is."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    if cap < 1.0:
        raise ValueError(f"cap must be >= 1, got {cap}")
    stale = (lag > 0)[:, None].expand_as(mask) & (mask > 0)
    ones = torch.ones_like(logp)
    raw = torch.where(stale, torch.exp((logp - logp_engine).clamp(max=30.0)), ones)
    if correction == "none":
        return BehaviourWeights(ones, stale, torch.zeros_like(stale), raw)
    if correction == "tis":
        truncated = stale & (raw > cap)
        return BehaviourWeights(raw.clamp(max=cap), stale, truncated, raw)
    truncated = stale & ((raw > cap) | (raw < 1.0 / cap))
    return BehaviourWeights(torch.where(truncated, torch.zeros_like(raw), ones), stale, truncated, raw)

"""Group-relative advantages. Pure: torch only.

Statistics are computed within each prompt's group of G responses, so domains never mix.
"""

from __future__ import annotations

import torch


def grpo_advantages(rewards: torch.Tensor, epsilon: float = 1e-6) -> torch.Tensor:
    """GRPO (DeepSeekMath, arXiv 2402.03300): A_i = (R_i - mean_g R) / (std_g R + eps).

    rewards: (P, G), one row per prompt group. Returns (P, G). The std is the population std
    (unbiased=False), so a group of identical rewards gets exactly zero advantage.
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be (prompts, G>=2), got {tuple(rewards.shape)}")
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, unbiased=False, keepdim=True)
    return (rewards - mean) / (std + epsilon)

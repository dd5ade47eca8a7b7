"""Group-relative advantages and the dynamic-sampling filter. Pure: torch only.

Statistics are computed within each prompt's group of G responses, so domains never mix.
Estimators are chosen by name through `ADVANTAGES` / `compute_advantages`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from counterpoint.trainer.algo.registry import Registry

AdvantageFn = Callable[..., torch.Tensor]
ADVANTAGES: Registry[AdvantageFn] = Registry("advantage estimator")
"""Estimator name → fn(rewards (P, G), **params) -> advantages (P, G)."""
register_advantage = ADVANTAGES.register


def _check_groups(rewards: torch.Tensor) -> None:
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be (prompts, G>=2), got {tuple(rewards.shape)}")


@register_advantage("grpo")
def grpo_advantages(rewards: torch.Tensor, epsilon: float = 1e-6) -> torch.Tensor:
    """GRPO (DeepSeekMath, arXiv 2402.03300): A_i = (R_i - mean_g R) / (std_g R + eps).

    rewards: (P, G), one row per prompt group. Returns (P, G). The std is the population std
    (unbiased=False), so a group of identical rewards gets exactly zero advantage.
    """
    _check_groups(rewards)
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, unbiased=False, keepdim=True)
    return (rewards - mean) / (std + epsilon)


@register_advantage("dr_grpo")
def dr_grpo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Dr. GRPO (arXiv 2503.20783): A_i = R_i - mean_g R, no division by the group std.

    rewards: (P, G). Returns (P, G). Dropping the std removes GRPO's up-weighting of groups that
    are nearly all right or all wrong (low std).
    """
    _check_groups(rewards)
    return rewards - rewards.mean(dim=1, keepdim=True)


@register_advantage("rloo")
def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO (arXiv 2402.14740): A_i = R_i - mean of the other G-1 rewards of the group.

    rewards: (P, G). Returns (P, G). Equals G/(G-1) * (R_i - mean_g R): the leave-one-out
    baseline does not depend on R_i, so the estimate is unbiased.
    """
    _check_groups(rewards)
    g = rewards.shape[1]
    others_mean = (rewards.sum(dim=1, keepdim=True) - rewards) / (g - 1)
    return rewards - others_mean


def compute_advantages(name: str, rewards: torch.Tensor, **params: float) -> torch.Tensor:
    """Advantages (P, G) of `rewards` (P, G) by the registered estimator `name`.

    `params` are the estimator's own scalars (e.g. epsilon=1e-6 for "grpo"); an unknown name
    raises ValueError, an unknown parameter TypeError.
    """
    return ADVANTAGES.lookup(name)(rewards, **params)


def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    """DAPO dynamic sampling (arXiv 2503.14476): which groups can give a gradient.

    rewards: (P, G). Returns a bool mask (P,): True where the group's rewards are not all equal.
    A group of equal rewards has zero advantage under every estimator here, so it adds no
    gradient, only tokens to the denominator; the caller drops it and may resample (bounded
    retries) until the batch is full.
    """
    _check_groups(rewards)
    return rewards.amax(dim=1) != rewards.amin(dim=1)

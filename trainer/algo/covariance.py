"""Covariance of log-prob and advantage, per token and in the mean. Pure: torch only.

For a softmax policy the entropy change of one policy-gradient step is, to first order,
-eta * Cov(log pi, A) (Cui et al., "The Entropy Mechanism of RL for Reasoning LMs",
arXiv 2505.22617): tokens with high log-prob *and* high advantage drive entropy down. Clip-Cov and
KL-Cov (`losses.py`) act on the tokens with the largest per-token term; the mean is a metric.
"""

from __future__ import annotations

import torch


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(torch.finfo(x.dtype).tiny)


def token_covariance(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token Cov_t = (A_t - mean A) * (logp_t - mean logp), detached; 0 where mask == 0.

    logp, advantages, mask: (B, T). The means are over the valid tokens of this (micro)batch,
    weighted by `mask`: a 0/1 mask gives plain means over valid tokens; a float mask acts as
    probability weights (the bandit test uses mask = pi to get Cov under a ~ pi).
    """
    logp, advantages = logp.detach(), advantages.detach()
    mask = mask.to(logp.dtype)
    cov = (advantages - _masked_mean(advantages, mask)) * (logp - _masked_mean(logp, mask))
    return torch.where(mask > 0, cov, torch.zeros_like(cov))


def mean_covariance(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cov(log pi, A) over the valid tokens: sum(M * Cov_t) / sum(M), a detached scalar.

    logp, advantages, mask: (B, T). With a 0/1 mask this is the (population) sample covariance
    over valid tokens; with mask = probabilities it is the covariance under that distribution.
    Negative of it, times the step size, predicts the step's entropy change (arXiv 2505.22617).
    """
    mask = mask.to(logp.dtype)
    return _masked_mean(token_covariance(logp, advantages, mask), mask)

"""Entropy dynamics of a softmax policy (Cui et al., arXiv 2505.22617), on a K-armed bandit.

Tabular softmax policy pi = softmax(z) over K = 8 arms, a fixed reward per arm,
A(a) = r(a) - E_pi[r]. One small step (eta = 1e-3):
  natural PG  z += eta * A        -> dH ~ -eta * Cov_{a~pi}(log pi(a), A(a))
  vanilla PG  z += eta * pi * A   -> dH ~ -eta * Cov_{a~pi}(log pi(a), pi(a) * A(a))
The covariances come from the project's `mean_covariance` with the mask holding pi (a weighted
covariance), the vanilla direction from the gradient of the project's PPO loss. float64
throughout: the entropy changes are ~1e-5, too small to measure in float32.
"""

import torch

from counterpoint.trainer.algo.covariance import mean_covariance
from counterpoint.trainer.algo.losses import ppo_clip_loss

K, ETA = 8, 1e-3


def _entropy(z: torch.Tensor) -> float:
    logp = torch.log_softmax(z, dim=-1)
    return float(-(logp.exp() * logp).sum())


def _bandits(n: int = 10):
    for seed in range(n):
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(K, generator=g, dtype=torch.float64) * 1.5
        reward = torch.rand(K, generator=g, dtype=torch.float64)
        pi = torch.softmax(z, dim=-1)
        yield z, pi, reward - (pi * reward).sum()


def _cov_under_pi(x: torch.Tensor, y: torch.Tensor, pi: torch.Tensor) -> float:
    return float(mean_covariance(x[None], y[None], pi[None]))


def _check(predicted: float, measured: float, checked: list) -> None:
    # skip draws whose covariance is ~0: there the first-order term is smaller than the
    # second-order one and a relative comparison means nothing
    if abs(predicted) < 1e-3 * ETA:
        return
    assert abs(measured - predicted) <= 0.01 * abs(predicted), (predicted, measured)
    checked.append(predicted)


def test_natural_pg_entropy_change_is_minus_eta_cov_logpi_a():
    checked = []
    for z, pi, adv in _bandits():
        predicted = -ETA * _cov_under_pi(pi.log(), adv, pi)
        measured = _entropy(z + ETA * adv) - _entropy(z)
        _check(predicted, measured, checked)
    assert len(checked) >= 9
    assert any(p > 0 for p in checked) and any(p < 0 for p in checked)  # both signs exercised


def test_vanilla_pg_entropy_change_is_minus_eta_cov_logpi_pi_a():
    checked = []
    for z, pi, adv in _bandits():
        # on-policy PPO loss over all arms, weighted by pi: its gradient in z is -pi * A
        logits = z.clone().requires_grad_(True)
        logp = torch.log_softmax(logits, dim=-1)
        out = ppo_clip_loss(logp[None], logp.detach()[None], adv[None], 0.2, 0.28)
        (out.loss[0] * pi).sum().backward()
        assert torch.allclose(-logits.grad, pi * adv, atol=1e-12)
        predicted = -ETA * _cov_under_pi(pi.log(), pi * adv, pi)
        measured = _entropy(z - ETA * logits.grad) - _entropy(z)
        _check(predicted, measured, checked)
    assert len(checked) >= 9

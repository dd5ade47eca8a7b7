"""The correction of samples an older policy generated: hand-computed weights for each mode, and
the objective that uses them (fresh rows untouched, stale rows weighted, gradients scaled)."""

import math

import pytest
import torch

from counterpoint.trainer.algo.aggregation import counts_per_domain
from counterpoint.trainer.algo.objective import DomainLoss, ObjectiveSettings, objective
from counterpoint.trainer.algo.off_policy import behaviour_weights

from .test_objective import _batch, _inputs

LOGP = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])
ENGINE = torch.tensor([[-1.0, -2.0, -0.2], [-3.0, -1.0, -1.0]])  # ratios e^0, e^1, e^-0.8 on row 0
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def test_tis_truncates_the_ratio_on_stale_rows_only():
    out = behaviour_weights(LOGP, ENGINE, MASK, torch.tensor([1.0, 0.0]), correction="tis", cap=2.0)
    assert out.weights[0].tolist() == pytest.approx([1.0, 2.0, math.exp(-0.8)])
    assert out.weights[1].tolist() == [1.0, 1.0, 1.0]  # lag 0: on-policy, untouched
    assert out.truncated[0].tolist() == [False, True, False] and not out.truncated[1].any()
    assert out.raw[0].tolist() == pytest.approx([1.0, math.e, math.exp(-0.8)])
    assert out.stale.tolist() == [[True, True, True], [False, False, False]]


def test_mask_drops_tokens_outside_the_band_and_keeps_the_rest_at_one():
    lag = torch.tensor([2.0, 1.0])
    out = behaviour_weights(LOGP, ENGINE, MASK, lag, correction="mask", cap=2.0)
    # row 0: e^1 > 2 dropped, e^-0.8 = 0.45 < 1/2 dropped; row 1: e^2 dropped, padding not stale
    assert out.weights.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    assert out.truncated.tolist() == [[False, True, True], [True, False, False]]
    assert out.stale[1].tolist() == [True, True, False]


def test_none_leaves_every_weight_at_one_but_still_measures():
    out = behaviour_weights(LOGP, ENGINE, MASK, torch.tensor([1.0, 1.0]), correction="none")
    assert torch.equal(out.weights, torch.ones_like(LOGP))
    assert float(out.raw[0, 1]) == pytest.approx(math.e)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="correction must be one of"):
        behaviour_weights(LOGP, ENGINE, MASK, torch.zeros(2), correction="clip")
    with pytest.raises(ValueError, match="cap must be >= 1"):
        behaviour_weights(LOGP, ENGINE, MASK, torch.zeros(2), cap=0.5)


def _settings():
    return ObjectiveSettings(
        losses={
            "math": DomainLoss("ppo_clip", {"clip_low": 0.2, "clip_high": 0.28}),
            "creative": DomainLoss("ppo_clip", {"clip_low": 0.2, "clip_high": 0.28}),
        },
        aggregation="token-mean",
        domain_normalisation=True,
        norm_constant=4.0,
    )


def test_the_objective_weights_the_policy_loss_of_stale_rows():
    batch = _batch()
    logp, old, entropy = _inputs(batch)
    counts = counts_per_domain(batch.response_mask, batch.domain_ids, 2)
    coefs = torch.zeros(2)
    plain, plain_sums = objective(logp, entropy, batch, old, settings=_settings(), counts=counts, entropy_coefs=coefs)
    # every row fresh: the weights are ones and the objective is exactly the on-policy one
    fresh = behaviour_weights(logp.detach(), batch.engine_logprobs, batch.response_mask, torch.zeros(len(batch)))
    same, _ = objective(
        logp, entropy, batch, old, settings=_settings(), counts=counts, entropy_coefs=coefs, behaviour=fresh
    )
    assert float(same.detach()) == float(plain.detach())
    # every row stale with a weight of 2 (tis at cap 2, ratios far above it): twice the loss
    stale = behaviour_weights(
        logp.detach(), batch.engine_logprobs - 5.0, batch.response_mask, torch.ones(len(batch)), cap=2.0
    )
    assert bool(torch.all(stale.weights[batch.response_mask > 0] == 2.0))
    doubled, sums = objective(
        logp, entropy, batch, old, settings=_settings(), counts=counts, entropy_coefs=coefs, behaviour=stale
    )
    assert float(doubled.detach()) == pytest.approx(2 * float(plain.detach()), rel=1e-6)
    (g_plain,) = torch.autograd.grad(plain, logp, retain_graph=True)
    (g_doubled,) = torch.autograd.grad(doubled, logp)
    assert torch.allclose(g_doubled, 2 * g_plain, atol=1e-7)
    for d in ("math", "creative"):
        assert sums[d]["stale_tokens"] == sums[d]["tokens"] == plain_sums[d]["tokens"]
        assert sums[d]["is_truncated_sum"] == sums[d]["tokens"]
        assert sums[d]["is_weight_sum"] > 2 * sums[d]["tokens"]  # the raw ratios, before the cap

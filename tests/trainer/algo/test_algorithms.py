"""Hand-computed values for advantages, the PPO-clip loss, aggregation and token entropy."""

import math

import pytest
import torch

from counterpoint.trainer.algo.advantages import grpo_advantages
from counterpoint.trainer.algo.aggregation import token_mean
from counterpoint.trainer.algo.entropy import logprobs_and_entropy
from counterpoint.trainer.algo.losses import ppo_clip_loss


def test_grpo_advantages_hand_computed():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    adv = grpo_advantages(rewards, epsilon=0.0 + 1e-12)
    # group 1: mean 0.5, population std 0.5 -> +-1; group 2: all equal -> exactly 0
    assert torch.allclose(adv[0], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-6)
    assert torch.equal(adv[1], torch.zeros(4))


def test_grpo_groups_are_independent():
    a = grpo_advantages(torch.tensor([[3.0, 1.0, 2.0], [100.0, 0.0, 50.0]]))
    # the same ranks within each group give the same standardised advantages
    assert torch.allclose(a[0], a[1], atol=1e-5)


def test_grpo_rejects_groups_of_one():
    with pytest.raises(ValueError, match="G>=2"):
        grpo_advantages(torch.tensor([[1.0], [0.0]]))


def test_ppo_clip_values_and_clipped_flags():
    # ratios e^0.5 ~ 1.6487 (above 1.28) and e^-0.5 ~ 0.6065 (below 0.8)
    logp = torch.tensor([[0.5, -0.5, 0.5, -0.5]])
    old = torch.zeros_like(logp)
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    out = ppo_clip_loss(logp, old, adv, clip_low=0.2, clip_high=0.28)
    r_hi, r_lo = math.exp(0.5), math.exp(-0.5)
    expected = torch.tensor([[-1.28, -r_lo, r_hi, 0.8]])
    assert torch.allclose(out.loss, expected, atol=1e-5)
    # A>0 & r above 1+eps_high: clipped; A<0 & r below 1-eps_low: clipped; the others are not
    assert out.clipped.tolist() == [[True, False, False, True]]


def test_ppo_clip_gradient_zero_on_clipped_tokens():
    logp = torch.tensor([[0.5, 0.1]], requires_grad=True)
    out = ppo_clip_loss(logp, torch.zeros(1, 2), torch.tensor([[1.0, 1.0]]), 0.2, 0.28)
    out.loss.sum().backward()
    # token 0 is clipped (ratio 1.65 > 1.28): no gradient; token 1: d(-r)/dlogp = -r
    assert logp.grad[0, 0] == 0.0
    assert torch.isclose(logp.grad[0, 1], torch.tensor(-math.exp(0.1)))


def test_on_policy_ppo_gradient_is_policy_gradient():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    adv = torch.tensor([[0.5, -2.0]])
    out = ppo_clip_loss(logp, logp.detach(), adv, 0.2, 0.28)
    out.loss.sum().backward()
    assert torch.allclose(logp.grad, -adv)


def test_token_mean_masks_and_global_denominator():
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert token_mean(loss, mask).item() == pytest.approx((1 + 2 + 4) / 3)
    assert token_mean(loss, mask, num_tokens=7.0).item() == pytest.approx(7 / 7)


def test_entropy_and_logprobs_against_reference():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, -1.0, 0.5]]])
    targets = torch.tensor([[1, 0]])
    logp, ent = logprobs_and_entropy(logits, targets)
    assert ent[0, 0].item() == pytest.approx(math.log(4), abs=1e-6)  # uniform over 4
    ref = torch.distributions.Categorical(logits=logits[0, 1])
    assert ent[0, 1].item() == pytest.approx(ref.entropy().item(), abs=1e-6)
    assert logp[0, 1].item() == pytest.approx(ref.log_prob(torch.tensor(0)).item(), abs=1e-6)
    assert logp[0, 0].item() == pytest.approx(-math.log(4), abs=1e-6)

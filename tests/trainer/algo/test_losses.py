"""Policy losses on hand-built tokens: values, gradients and diagnostic masks.

The covariance fixture: 2 responses x 4 valid tokens + 1 padding column. A = +1 / -1 per row
(mean A = 0), logp chosen so that mean logp over valid tokens is -11 and
Cov_t = A_t * (logp_t + 11) is, row 0: 3, 2, 0.5, -1; row 1: 4, 1.5, -2, 1. The padding columns
hold log-probs whose raw covariance (10 and 3) would win or qualify if padding leaked in.
"""

import math

import pytest
import torch

from counterpoint.trainer.algo.covariance import mean_covariance, token_covariance
from counterpoint.trainer.algo.losses import (
    POLICY_LOSSES,
    PolicyLossOutput,
    clip_cov_loss,
    get_policy_loss,
    gppo_loss,
    kl_cov_loss,
    kl_k3,
    ppo_clip_loss,
)

LOGP = torch.tensor([[-8.0, -9.0, -10.5, -12.0, -1.0], [-15.0, -12.5, -9.0, -12.0, -14.0]])
ADV = torch.tensor([[1.0] * 5, [-1.0] * 5])
MASK = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0]])
COV = torch.tensor([[3.0, 2.0, 0.5, -1.0, 0.0], [4.0, 1.5, -2.0, 1.0, 0.0]])


def _old_with_token_00_clipped():
    """logp_old such that token (0, 0) has r = e^0.5 > 1.28 with A > 0: clipped by PPO."""
    old = LOGP.clone()
    old[0, 0] -= 0.5
    return old


def _grad(out: PolicyLossOutput, logp: torch.Tensor, mask=MASK) -> torch.Tensor:
    (out.loss * mask).sum().backward()
    return logp.grad


# ---- covariance -------------------------------------------------------------------------


def test_token_covariance_hand_values_and_mean():
    assert torch.allclose(token_covariance(LOGP, ADV, MASK), COV)
    assert mean_covariance(LOGP, ADV, MASK).item() == pytest.approx(9 / 8)


# ---- registry ---------------------------------------------------------------------------


def test_registry_and_uniform_call():
    assert set(POLICY_LOSSES) >= {"ppo_clip", "gppo", "clip_cov", "kl_cov"}
    with pytest.raises(ValueError, match="unknown policy loss"):
        get_policy_loss("grpo_v2")
    params = {
        "ppo_clip": dict(clip_low=0.2, clip_high=0.28, dual_clip=3.0),
        "gppo": dict(clip_low=0.2, clip_high=0.28, dual_clip=10.0),
        "clip_cov": dict(
            clip_low=0.2,
            clip_high=0.28,
            select_fraction=0.25,
            cov_low=1.0,
            cov_high=5.0,
            generator=torch.Generator().manual_seed(0),
        ),
        "kl_cov": dict(select_fraction=0.25, kl_coef=1.0),
    }
    for name, scalars in params.items():
        out = get_policy_loss(name)(LOGP, _old_with_token_00_clipped(), ADV, mask=MASK, **scalars)
        assert out.loss.shape == LOGP.shape
        assert set(out.flags()) == {"clipped", "dual_clipped", "selected", "preserved"}
        assert all(f.dtype == torch.bool and f.shape == LOGP.shape for f in out.flags().values())


# ---- PPO clip-higher and dual clip ---------------------------------------------------------


def test_dual_clip_caps_the_loss_for_negative_advantages():
    logp = torch.tensor([[1.5, 0.5, 1.5]], requires_grad=True)
    adv = torch.tensor([[-2.0, -2.0, 1.0]])
    out = ppo_clip_loss(logp, torch.zeros(1, 3), adv, 0.2, 0.28, dual_clip=3.0)
    # token 0: -A*r = 2*e^1.5 = 8.96 > -A*c = 6 -> capped at 6, no gradient
    # token 1: r = e^0.5 = 1.65 < c -> 2*e^0.5 with gradient 2*e^0.5
    # token 2: A > 0 is never dual-clipped; r > 1.28 -> -1.28 (PPO clip)
    assert torch.allclose(out.loss, torch.tensor([[6.0, 2 * math.exp(0.5), -1.28]]))
    assert out.dual_clipped.tolist() == [[True, False, False]]
    assert out.clipped.tolist() == [[True, False, True]]
    out.loss.sum().backward()
    assert torch.allclose(logp.grad, torch.tensor([[0.0, 2 * math.exp(0.5), 0.0]]))


def test_dual_clip_must_exceed_one():
    with pytest.raises(ValueError, match="dual_clip"):
        ppo_clip_loss(LOGP, LOGP, ADV, 0.2, 0.28, dual_clip=1.0)


# ---- GPPO -----------------------------------------------------------------------------------

# (A, log r): above the upper bound with A>0 (PPO clips), below the lower with A>0 (not clipped),
# above with A<0 (not clipped), below with A<0 (PPO clips), inside the band.
GP_ADV = torch.tensor([[1.0, 1.0, -1.0, -1.0, 1.0]])
GP_LOGR = torch.tensor([[0.5, -0.5, 0.5, -0.5, math.log(1.1)]])


def test_gppo_value_equals_clip_higher_ppo():
    ppo = ppo_clip_loss(GP_LOGR, torch.zeros(1, 5), GP_ADV, 0.2, 0.28)
    gppo = gppo_loss(GP_LOGR, torch.zeros(1, 5), GP_ADV, 0.2, 0.28)
    assert torch.allclose(gppo.loss, ppo.loss, atol=0, rtol=0)
    assert gppo.preserved.tolist() == ppo.clipped.tolist() == [[True, False, False, True, False]]
    assert not gppo.clipped.any()


def test_gppo_gradient_is_the_bound_gradient_on_clipped_tokens():
    logp_ppo = GP_LOGR.clone().requires_grad_(True)
    logp_gppo = GP_LOGR.clone().requires_grad_(True)
    ppo_clip_loss(logp_ppo, torch.zeros(1, 5), GP_ADV, 0.2, 0.28).loss.sum().backward()
    gppo_loss(logp_gppo, torch.zeros(1, 5), GP_ADV, 0.2, 0.28).loss.sum().backward()
    r_hi, r_lo = math.exp(0.5), math.exp(-0.5)
    # PPO: zero on the clipped tokens 0 and 3; d(-A r)/dlogp = -A r elsewhere
    assert torch.allclose(logp_ppo.grad, torch.tensor([[0.0, -r_lo, r_hi, 0.0, -1.1]]))
    # GPPO: -A * (ratio at the bound) on tokens 0 and 3 (= -1.28 and +0.8), the same elsewhere
    assert torch.allclose(logp_gppo.grad, torch.tensor([[-1.28, -r_lo, r_hi, 0.8, -1.1]]))


def test_gppo_dual_clip_still_zeroes_runaway_negative_tokens():
    logp = torch.tensor([[2.5, 0.5]], requires_grad=True)  # r = 12.2 > c = 10, and 1.65 < c
    out = gppo_loss(logp, torch.zeros(1, 2), torch.tensor([[-1.0, -1.0]]), 0.2, 0.28, dual_clip=10.0)
    assert torch.allclose(out.loss, torch.tensor([[10.0, math.exp(0.5)]]))
    assert out.clipped.tolist() == [[True, False]] and not out.preserved.any()
    out.loss.sum().backward()
    assert torch.allclose(logp.grad, torch.tensor([[0.0, math.exp(0.5)]]))


# ---- Clip-Cov --------------------------------------------------------------------------------

CANDIDATES = {(0, 1), (1, 0), (1, 1)}  # Cov in (1, 5), valid, not clipped ((0, 0) is clipped)


def _clip_cov(logp, fraction=0.25, low=1.0, high=5.0, seed=0):
    return clip_cov_loss(
        logp,
        _old_with_token_00_clipped(),
        ADV,
        mask=MASK,
        clip_low=0.2,
        clip_high=0.28,
        select_fraction=fraction,
        cov_low=low,
        cov_high=high,
        generator=torch.Generator().manual_seed(seed),
    )


def _positions(flags: torch.Tensor) -> set:
    return {tuple(i) for i in flags.nonzero().tolist()}


def test_clip_cov_detaches_exactly_n_candidates():
    seen = set()
    for seed in range(20):
        logp = LOGP.clone().requires_grad_(True)
        out = _clip_cov(logp, seed=seed)
        chosen = _positions(out.selected)
        assert len(chosen) == 2  # max(1, floor(0.25 * 8))
        assert chosen <= CANDIDATES  # within (omega_low, omega_high), never clipped or padding
        grad = _grad(out, logp)
        for t in chosen:
            assert grad[t] == 0.0 and out.loss[t] == 0.0
        for t in CANDIDATES - chosen:  # the unchosen candidate keeps -A * r = +1 (row 1) / -1 (row 0)
            assert grad[t] == -ADV[t]
        assert grad[0, 0] == 0.0  # PPO-clipped
        seen |= chosen
    assert seen == CANDIDATES  # uniform choice: every candidate gets picked under some seed


def test_clip_cov_same_seed_same_choice():
    assert torch.equal(_clip_cov(LOGP, seed=7).selected, _clip_cov(LOGP, seed=7).selected)


def test_clip_cov_never_picks_clipped_or_padding_even_with_wide_bounds():
    out = _clip_cov(LOGP, fraction=1.0, low=-100.0, high=100.0)
    valid_unclipped = (MASK > 0) & ~out.clipped
    assert torch.equal(out.selected, valid_unclipped)
    assert int(out.selected.sum()) == 7


def test_clip_cov_picks_at_least_one():
    assert int(_clip_cov(LOGP, fraction=0.01).selected.sum()) == 1


def test_clip_cov_takes_all_candidates_when_fewer_than_n():
    assert _positions(_clip_cov(LOGP, fraction=1.0).selected) == CANDIDATES


# ---- KL-Cov ----------------------------------------------------------------------------------


def test_kl_cov_picks_the_top_k_by_covariance():
    out = kl_cov_loss(LOGP, LOGP, ADV, mask=MASK, select_fraction=0.25, kl_coef=1.0)
    # top 2 of the valid covs are 4 at (1, 0) and 3 at (0, 0); the padding's raw 10 is excluded
    assert _positions(out.selected) == {(1, 0), (0, 0)}
    assert not out.clipped.any()


def test_kl_cov_top_k_on_random_tokens():
    g = torch.Generator().manual_seed(3)
    logp = -torch.rand(6, 9, generator=g) * 5
    adv = torch.randn(6, 1, generator=g).expand(6, 9)
    mask = (torch.rand(6, 9, generator=g) > 0.3).float()
    out = kl_cov_loss(logp, logp, adv, mask=mask, select_fraction=0.1, kl_coef=1.0)
    k = max(1, math.floor(0.1 * int(mask.sum())))
    cov = token_covariance(logp, adv, mask)[mask > 0]
    assert int(out.selected.sum()) == k
    assert (out.selected <= (mask > 0)).all()
    picked = token_covariance(logp, adv, mask)[out.selected]
    assert picked.min() >= torch.topk(cov, k).values.min()


def test_kl_cov_values_and_the_abs_gradient_trap():
    old = LOGP.clone()
    old[0, 0] -= 0.5  # logp - logp_old = +0.5 on a selected token
    logp = LOGP.clone().requires_grad_(True)
    out = kl_cov_loss(logp, old, ADV, mask=MASK, select_fraction=0.25, kl_coef=1.0)
    assert out.loss[0, 0].item() == pytest.approx(-math.exp(0.5) + 0.5)
    assert out.loss[1, 0].item() == pytest.approx(1.0)  # on-policy: -A*r = 1, |0| = 0
    grad = _grad(out, logp)
    assert grad[0, 0].item() == pytest.approx(-math.exp(0.5) + 1.0)  # KL term pushes logp down
    assert grad[1, 0].item() == pytest.approx(1.0)  # logp == logp_old: the |x| term gives nothing
    assert grad[0, 1].item() == pytest.approx(-1.0)  # unselected: plain -A * r


def test_kl_cov_penalty_gradient_sign_below_old():
    old = LOGP.clone()
    old[1, 0] += 0.3  # logp < logp_old on the top-covariance token (A = -1)
    logp = LOGP.clone().requires_grad_(True)
    grad = _grad(kl_cov_loss(logp, old, ADV, mask=MASK, select_fraction=0.125, kl_coef=2.0), logp)
    # -A r = e^-0.3, d/dlogp = e^-0.3; 2 * |logp - old| has d/dlogp = -2
    assert grad[1, 0].item() == pytest.approx(math.exp(-0.3) - 2.0)


# ---- reference KL (k3) -----------------------------------------------------------------------


def test_kl_k3_values_and_gradient():
    logp = torch.tensor([[-1.0, 0.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.0, math.log(2.0), -1.0]])
    k3 = kl_k3(logp, ref)
    # d = ref - logp = (0, ln 2, 1): e^d - d - 1
    assert torch.allclose(k3, torch.tensor([[0.0, 1 - math.log(2.0), math.e - 2]]))
    k3.sum().backward()
    # d/dlogp (e^d - d - 1) = 1 - e^d
    assert torch.allclose(logp.grad, torch.tensor([[0.0, -1.0, 1 - math.e]]))


def test_kl_k3_expectation_is_the_kl():
    pi = torch.tensor([0.5, 0.3, 0.2])
    ref = torch.tensor([0.2, 0.2, 0.6])
    expected = (pi * (pi / ref).log()).sum()
    assert (pi * kl_k3(pi.log(), ref.log())).sum().item() == pytest.approx(expected.item(), rel=1e-6)


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

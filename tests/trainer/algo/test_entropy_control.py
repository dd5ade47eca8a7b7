"""The entropy bonus term and the adaptive (Skywork-OR1) per-domain entropy controllers."""

import json

import pytest
import torch

from counterpoint.trainer.algo.aggregation import aggregate, aggregate_per_domain
from counterpoint.trainer.algo.entropy_control import (
    AdaptiveEntropyController,
    DomainEntropyCoefficients,
    entropy_bonus,
)


def test_defaults_are_the_published_ones():
    c = AdaptiveEntropyController()
    assert (c.target, c.step_size, c.max_coef) == (0.2, 1e-4, 5e-3)
    assert c.alpha == 0.0 and c.coef == 0.0


def test_controller_follows_its_rule_and_clamps():
    c = AdaptiveEntropyController(target=0.2, step_size=1e-3, max_coef=2.5e-3)
    script = [
        # (measured entropy, alpha after, coef used next)
        (0.30, 0.0, 0.0),  # above target at alpha 0: clamped at 0
        (0.10, 1e-3, 1e-3),
        (0.10, 2e-3, 2e-3),
        (0.10, 2.5e-3, 2.5e-3),  # 3e-3 clamped to alpha_max
        (0.10, 2.5e-3, 2.5e-3),
        (0.25, 1.5e-3, 0.0),  # above target: alpha decreases and the bonus is off
        (0.20, 0.5e-3, 0.0),  # equal is not below
        (0.10, 1.5e-3, 1.5e-3),
        (0.90, 0.5e-3, 0.0),
        (0.90, 0.0, 0.0),  # 0.5e-3 - 1e-3 clamped at 0
    ]
    for entropy, alpha, coef in script:
        returned = c.update(entropy)
        assert c.alpha == pytest.approx(alpha, abs=1e-12)
        assert c.coef == pytest.approx(coef, abs=1e-12) and returned == c.coef


def test_controller_state_round_trips():
    a = AdaptiveEntropyController(target=0.2, step_size=1e-3, max_coef=1e-2)
    for h in (0.1, 0.1, 0.3, 0.1):
        a.update(h)
    state = json.loads(json.dumps(a.state_dict()))  # plain floats: fits any checkpoint
    b = AdaptiveEntropyController(target=0.2, step_size=1e-3, max_coef=1e-2)
    b.load_state_dict(state)
    assert (b.alpha, b.coef, b.last_entropy) == (a.alpha, a.coef, a.last_entropy)
    for h in (0.05, 0.4, 0.1):
        assert a.update(h) == b.update(h)


def test_invalid_settings_rejected():
    with pytest.raises(ValueError):
        AdaptiveEntropyController(step_size=0.0)


class _Spec:
    """An entropy control as the config gives one (fixed coef, or adaptive with step sizes)."""

    def __init__(self, coef=0.0, adaptive=False, step_size=1e-3, max_coef=5e-3):
        self.coef, self.adaptive, self.step_size, self.max_coef = coef, adaptive, step_size, max_coef


def test_per_domain_controllers_have_their_own_targets_and_configured_step_sizes():
    ctl = DomainEntropyCoefficients({"math": _Spec(adaptive=True), "creative": _Spec(adaptive=True, step_size=2e-3)})
    ctl.set_targets({"math": 0.2, "creative": 1.5})
    ctl.update({"math": 0.1, "creative": 1.0})  # both below their targets
    assert ctl.coef("math") == pytest.approx(1e-3) and ctl.coef("creative") == pytest.approx(2e-3)
    ctl.update({"math": 0.5, "creative": 1.0})  # math above its target now
    assert ctl.coef("math") == 0.0 and ctl.coef("creative") == pytest.approx(4e-3)
    assert ctl.controllers["math"].alpha == pytest.approx(0.0)
    ctl.update({"creative": 2.0})  # math absent this step: untouched
    assert ctl.controllers["math"].last_entropy == 0.5
    assert torch.allclose(ctl.coefs(["creative", "math"]), torch.tensor([0.0, 0.0]))
    assert set(ctl.metrics("creative")) == {"entropy_alpha", "entropy_coef", "entropy_target", "entropy_measured"}
    with pytest.raises(KeyError, match="code"):
        ctl.set_targets({"code": 0.1})


def test_per_domain_state_round_trips():
    specs = {"math": _Spec(adaptive=True), "creative": _Spec(adaptive=True)}
    a = DomainEntropyCoefficients(specs)
    a.set_targets({"math": 0.2, "creative": 1.5})
    a.update({"math": 0.1, "creative": 1.0})
    a.update({"math": 0.1})
    b = DomainEntropyCoefficients({**specs, "code": _Spec()})
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.state_dict() == a.state_dict() and b.coef("math") == a.coef("math") > 0
    with pytest.raises(KeyError, match="does not have"):
        DomainEntropyCoefficients({"math": _Spec()}).load_state_dict(a.state_dict())


def test_entropy_bonus_is_minus_alpha_times_aggregated_entropy():
    entropy = torch.tensor([[1.0, 2.0, 4.0], [3.0, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    term = entropy_bonus(entropy, 0.01)
    assert torch.allclose(term, -0.01 * entropy)
    value = aggregate(term, mask, "token-mean")
    assert value.item() == pytest.approx(-0.01 * (1 + 2 + 4 + 3) / 4)
    value.backward()
    assert torch.allclose(entropy.grad, -0.01 * mask / 4)  # the bonus pushes entropy up


def test_entropy_bonus_per_domain_coefficients():
    entropy = torch.tensor([[1.0, 3.0], [2.0, 0.0], [5.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    ids = torch.tensor([0, 0, 1])
    alphas = torch.tensor([0.1, 0.02])  # e.g. DomainEntropyCoefficients.coefs(domains)
    term = entropy_bonus(entropy, alphas[ids])
    assert torch.allclose(term[0], torch.tensor([-0.1, -0.3]))
    value = aggregate_per_domain(term, mask, ids, {0: 1.0, 1: 1.0}, "token-mean")
    # domain 0: -0.1 * mean(1, 3, 2) = -0.2; domain 1: -0.02 * 5 = -0.1; equal weights
    assert value.item() == pytest.approx(0.5 * -0.2 + 0.5 * -0.1)


def test_schedule_targets_come_and_go():
    coefs = DomainEntropyCoefficients({"math": _Spec(coef=0.002), "creative": _Spec(adaptive=True, step_size=1e-4)})
    assert coefs.coef("math") == 0.002 and coefs.coef("creative") == 0.0  # adaptive without a target: off
    coefs.set_targets({"math": 0.5, "creative": 0.7})
    coefs.update({"math": 0.1, "creative": 0.1})
    assert coefs.coef("math") == pytest.approx(1e-3)  # adaptive now, with its own spec's step size
    assert coefs.coef("creative") == pytest.approx(1e-4)
    coefs.set_targets({})  # the schedule dropped both budgets
    assert coefs.coef("math") == 0.002 and coefs.coef("creative") == 0.0  # the configured fixed alpha
    coefs.set_targets({"creative": 0.7})
    assert coefs.controllers["creative"].alpha == pytest.approx(1e-4)  # alpha kept while away

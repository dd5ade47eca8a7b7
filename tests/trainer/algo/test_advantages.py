"""GRPO, Dr. GRPO and RLOO on hand-computed groups; the dynamic-sampling filter."""

import pytest
import torch

from counterpoint.trainer.algo.advantages import ADVANTAGES, compute_advantages, informative_groups

REWARDS = torch.tensor([[1.0, 0.0, 0.0, 1.0], [3.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5]])


def test_registry_names():
    assert set(ADVANTAGES) >= {"grpo", "dr_grpo", "rloo"}
    with pytest.raises(ValueError, match="unknown advantage"):
        compute_advantages("ppo", REWARDS)


def test_grpo_values():
    adv = compute_advantages("grpo", REWARDS, epsilon=1e-12)
    assert torch.allclose(adv[0], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-6)
    # group 2: mean 1.5, deviations (1.5, -.5, -.5, -.5), population std sqrt(0.75)
    std = 0.75**0.5
    assert torch.allclose(adv[1], torch.tensor([1.5, -0.5, -0.5, -0.5]) / std, atol=1e-6)
    assert torch.equal(adv[2], torch.zeros(4))


def test_dr_grpo_values_no_std_division():
    adv = compute_advantages("dr_grpo", REWARDS)
    assert torch.allclose(adv[0], torch.tensor([0.5, -0.5, -0.5, 0.5]))
    assert torch.allclose(adv[1], torch.tensor([1.5, -0.5, -0.5, -0.5]))
    assert torch.equal(adv[2], torch.zeros(4))
    with pytest.raises(TypeError):
        compute_advantages("dr_grpo", REWARDS, epsilon=1e-6)  # Dr. GRPO has no epsilon


def test_rloo_values_leave_one_out():
    adv = compute_advantages("rloo", REWARDS)
    # group 1, response 0: 1 - mean(0, 0, 1) = 2/3; response 1: 0 - mean(1, 0, 1) = -2/3
    assert torch.allclose(adv[0], torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3]))
    # group 2, response 0: 3 - 1 = 2; response 1: 1 - mean(3, 1, 1) = -2/3
    assert torch.allclose(adv[1], torch.tensor([2.0, -2 / 3, -2 / 3, -2 / 3]))
    assert torch.equal(adv[2], torch.zeros(4))
    # RLOO = G/(G-1) * Dr. GRPO
    assert torch.allclose(adv, compute_advantages("dr_grpo", REWARDS) * 4 / 3)


def test_informative_groups_mask():
    mask = informative_groups(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.3]]))
    assert mask.tolist() == [False, False, True, True]
    assert mask.dtype == torch.bool


def test_groups_of_one_rejected():
    for name in ADVANTAGES:
        with pytest.raises(ValueError, match="G>=2"):
            compute_advantages(name, torch.tensor([[1.0], [0.0]]))


def test_grpo_groups_are_independent():
    a = compute_advantages("grpo", torch.tensor([[3.0, 1.0, 2.0], [100.0, 0.0, 50.0]]))
    # the same ranks within each group give the same standardised advantages
    assert torch.allclose(a[0], a[1], atol=1e-5)

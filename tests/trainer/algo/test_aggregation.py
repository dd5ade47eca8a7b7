"""Aggregation modes and per-domain normalisation on hand-computed tensors."""

import pytest
import torch

from counterpoint.trainer.algo.aggregation import (
    AGGREGATIONS,
    aggregate,
    aggregate_per_domain,
    counts_per_domain,
    token_mean,
)

# Row 0 has 2 valid tokens (1, 2), row 1 has 1 (4), row 2 is padding only.
LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


def test_registry_holds_the_four_modes():
    assert set(AGGREGATIONS) == {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"}
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(LOSS, MASK, "token-sum")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", (1 + 2 + 4) / 3),
        ("seq-mean-token-mean", ((1 + 2) / 2 + 4 / 1) / 2),  # the padding-only row is no sequence
        ("seq-mean-token-sum", ((1 + 2) + 4) / 2),
        ("seq-mean-token-sum-norm", ((1 + 2) + 4) / (4 * 2)),  # C = 4
    ],
)
def test_local_denominators(mode, expected):
    assert aggregate(LOSS, MASK, mode, norm_constant=4).item() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", 7 / 10),  # num_tokens = 10
        ("seq-mean-token-mean", (1.5 + 4) / 5),  # num_sequences = 5
        ("seq-mean-token-sum", 7 / 5),
        ("seq-mean-token-sum-norm", 7 / (4 * 5)),
    ],
)
def test_global_denominators(mode, expected):
    value = aggregate(LOSS, MASK, mode, num_tokens=10, num_sequences=5, norm_constant=4)
    assert value.item() == pytest.approx(expected)


def test_token_mean_keeps_its_old_signature():
    assert token_mean(LOSS, MASK).item() == pytest.approx(7 / 3)
    assert token_mean(LOSS, MASK, num_tokens=7.0).item() == pytest.approx(1.0)


def test_sum_norm_requires_a_constant():
    with pytest.raises(ValueError, match="norm_constant"):
        aggregate(LOSS, MASK, "seq-mean-token-sum-norm")


@pytest.mark.parametrize("mode", sorted(AGGREGATIONS))
def test_micro_batches_with_global_counts_sum_to_the_full_batch(mode):
    loss = torch.arange(12.0).view(4, 3)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    counts = dict(num_tokens=6.0, num_sequences=3.0, norm_constant=3.0)
    full = aggregate(loss, mask, mode, norm_constant=3.0)
    parts = aggregate(loss[:1], mask[:1], mode, **counts) + aggregate(loss[1:], mask[1:], mode, **counts)
    assert parts.item() == pytest.approx(full.item())


def test_gradient_weights_per_token():
    loss = torch.ones(2, 3, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    aggregate(loss, mask, "token-mean").backward()
    assert torch.allclose(loss.grad, mask / 4)  # every token 1/N
    loss.grad = None
    aggregate(loss, mask, "seq-mean-token-mean").backward()
    expected = torch.tensor([[1 / 6, 1 / 6, 1 / 6], [1 / 2, 0.0, 0.0]])  # 1/(S * |o_i|)
    assert torch.allclose(loss.grad, expected)
    loss.grad = None
    aggregate(loss, mask, "seq-mean-token-sum-norm", norm_constant=5).backward()
    assert torch.allclose(loss.grad, mask / 10)  # 1/(C * S), whatever the length


# Per-domain: domain 0 has one response of 10 tokens with loss 1, domain 1 one token with loss 3.
PD_LOSS = torch.tensor([[1.0] * 10, [3.0] + [99.0] * 9])
PD_MASK = torch.tensor([[1.0] * 10, [1.0] + [0.0] * 9])
PD_IDS = torch.tensor([0, 1])


def test_a_domain_with_10x_the_tokens_does_not_get_10x_the_weight():
    plain = aggregate(PD_LOSS, PD_MASK, "token-mean")
    assert plain.item() == pytest.approx((10 * 1 + 3) / 11)  # domain 0 carries 10/11 of it
    loss = PD_LOSS.clone().requires_grad_(True)
    value = aggregate_per_domain(loss, PD_MASK, PD_IDS, {0: 1.0, 1: 1.0}, "token-mean")
    assert value.item() == pytest.approx(0.5 * 1 + 0.5 * 3)
    value.backward()
    share = (loss.grad * PD_MASK).sum(dim=1)
    assert torch.allclose(share, torch.tensor([0.5, 0.5]))  # each domain half of the gradient
    assert loss.grad[0, 0].item() == pytest.approx(0.05)
    assert loss.grad[1, 0].item() == pytest.approx(0.5)


def test_per_domain_explicit_weights_dict_and_tensor():
    by_dict = aggregate_per_domain(PD_LOSS, PD_MASK, PD_IDS, {0: 3.0, 1: 1.0}, "token-mean")
    by_tensor = aggregate_per_domain(PD_LOSS, PD_MASK, PD_IDS, torch.tensor([3.0, 1.0]), "token-mean")
    assert by_dict.item() == pytest.approx(0.75 * 1 + 0.25 * 3)
    assert by_tensor.item() == pytest.approx(by_dict.item())


def test_per_domain_weights_renormalise_over_present_domains():
    # domain 2 has a weight but no tokens: the weights of 0 and 1 are renormalised to 1/2 each
    value = aggregate_per_domain(PD_LOSS, PD_MASK, PD_IDS, {0: 1.0, 1: 1.0, 2: 2.0}, "token-mean")
    assert value.item() == pytest.approx(2.0)


def test_per_domain_with_global_counts():
    # global batch: domain 0 has 20 tokens, domain 1 two, domain 2 none -> (10/20, 3/2) averaged
    value = aggregate_per_domain(
        PD_LOSS, PD_MASK, PD_IDS, {0: 1.0, 1: 1.0, 2: 1.0}, "token-mean", num_tokens=torch.tensor([20.0, 2.0, 0.0])
    )
    assert value.item() == pytest.approx(0.5 * 0.5 + 0.5 * 1.5)


@pytest.mark.parametrize("mode", sorted(AGGREGATIONS))
def test_per_domain_micro_batches_sum_to_the_full_batch(mode):
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [2.0, 2.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    ids = torch.tensor([0, 0, 1, 2])
    weights = {0: 2.0, 1: 1.0, 2: 1.0}
    tokens, seqs = counts_per_domain(mask, ids, 3)
    assert tokens.tolist() == [4.0, 2.0, 3.0] and seqs.tolist() == [2.0, 1.0, 1.0]
    full = aggregate_per_domain(loss, mask, ids, weights, mode, norm_constant=3)
    kw = dict(num_tokens=tokens, num_sequences=seqs, norm_constant=3)
    # the first micro-batch holds only domain 0; its weight must still be 2/4, not 1
    parts = aggregate_per_domain(loss[:2], mask[:2], ids[:2], weights, mode, **kw)
    parts = parts + aggregate_per_domain(loss[2:], mask[2:], ids[2:], weights, mode, **kw)
    assert parts.item() == pytest.approx(full.item())


def test_per_domain_hand_value_seq_mean_token_mean():
    loss = torch.tensor([[1.0, 3.0], [5.0, 0.0], [6.0, 8.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    # domain 0: rows (2, 5) -> 3.5; domain 1: row 7 -> 7; weights 1:3 -> 0.25*3.5 + 0.75*7
    value = aggregate_per_domain(loss, mask, torch.tensor([0, 0, 1]), {0: 1.0, 1: 3.0}, "seq-mean-token-mean")
    assert value.item() == pytest.approx(0.25 * 3.5 + 0.75 * 7)


def test_per_domain_errors():
    with pytest.raises(KeyError, match="no weight"):
        aggregate_per_domain(PD_LOSS, PD_MASK, PD_IDS, {0: 1.0}, "token-mean")
    with pytest.raises(ValueError, match="global count"):
        aggregate_per_domain(PD_LOSS, PD_MASK, PD_IDS, {0: 1.0, 1: 1.0}, "token-mean", num_tokens={0: 10.0})
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate_per_domain(PD_LOSS, PD_MASK, PD_IDS, {0: 1.0, 1: 1.0}, "nope")


def test_token_mean_masks_and_global_denominator():
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert token_mean(loss, mask).item() == pytest.approx((1 + 2 + 4) / 3)
    assert token_mean(loss, mask, num_tokens=7.0).item() == pytest.approx(7 / 7)

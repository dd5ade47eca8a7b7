"""Effective rank of hidden states on hand-computed spectra; degenerate inputs; the batched form
against the per-row one."""

import math

import pytest
import torch

from counterpoint.trainer.algo.effective_rank import effective_rank, effective_ranks

E = torch.eye(3, dtype=torch.float64)


def test_rank_one_centred_structure_gives_one():
    # rows c + a_t·v: centred, (a_t − ā)·v, all on one line → one non-zero σ → p = (1) → ER = e^0 = 1
    c, v = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, -1.0, 0.0])
    z = c + torch.tensor([0.0, 1.0, 2.0, 5.0]).unsqueeze(1) * v
    assert effective_rank(z) == pytest.approx(1.0, abs=1e-12)


def test_two_orthogonal_equal_energy_directions_give_two():
    # rows e1, −e1, e2, −e2 (+ an offset that centring removes): ZᵀZ = diag(2, 2, 0), σ = (√2, √2),
    # p = (1/2, 1/2), H = ln 2, ER = 2
    z = torch.stack([E[0], -E[0], E[1], -E[1]]) + torch.tensor([5.0, -3.0, 7.0], dtype=torch.float64)
    assert effective_rank(z) == pytest.approx(2.0, abs=1e-12)


def test_unequal_spectrum():
    # rows ±(3/√2)e1, ±(1/√2)e2: ZᵀZ = diag(9, 1), σ = (3, 1), p = (3/4, 1/4),
    # H = −(3/4 ln 3/4 + 1/4 ln 1/4) = ln 4 − (3/4) ln 3, ER = 4 / 3^(3/4) ≈ 1.7548
    s = 2**-0.5
    z = torch.stack([3 * s * E[0], -3 * s * E[0], s * E[1], -s * E[1]])
    assert effective_rank(z) == pytest.approx(4 / 3**0.75, abs=1e-12)


@pytest.mark.parametrize("d", [2, 4, 10])
def test_identity_rows_give_d_minus_one(d):
    # Z = I_d (T = d): the mean row is (1/d)·1, the centred matrix I − J/d is the projector onto 1⊥:
    # eigenvalues 1 (d − 1 times) and 0, so σ = (1, …, 1, 0), p = 1/(d − 1) each, ER = d − 1
    assert effective_rank(torch.eye(d)) == pytest.approx(d - 1, abs=1e-10)


def test_degenerate_inputs():
    assert effective_rank(torch.zeros(0, 4)) is None  # no tokens
    assert effective_rank(torch.randn(1, 4)) is None  # T = 1: nothing to centre against
    assert effective_rank(torch.zeros(5, 4)) is None  # every σ = 0
    row = torch.randn(1, 64, dtype=torch.float64) * 123.4 + 5.0
    assert effective_rank(row.repeat(40, 1)) is None  # identical rows: σ = 0 exactly after centring
    assert effective_rank(row.float().repeat(7, 1)) is None
    # d = 1, values not all equal: one direction → 1
    assert effective_rank(torch.tensor([[1.0], [2.0], [4.0]])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="must be"):
        effective_rank(torch.zeros(2, 3, 4))


def test_dtype_does_not_matter_and_range_holds():
    torch.manual_seed(0)
    z = torch.randn(9, 5)
    er = effective_rank(z)
    assert er == pytest.approx(effective_rank(z.double()), abs=1e-12)  # computed in float64 either way
    assert 1.0 <= er <= min(9 - 1, 5)
    zb = z.to(torch.bfloat16)
    assert effective_rank(zb) == pytest.approx(effective_rank(zb.double()), abs=1e-12)
    # T ≤ d: centring leaves at most T − 1 directions
    assert effective_rank(torch.randn(3, 50)) <= 2.0 + 1e-12


def test_batched_matches_per_row():
    torch.manual_seed(1)
    b, t, d = 6, 12, 7
    hidden = torch.randn(b, t, d)
    mask = torch.rand(b, t) > 0.3
    mask[0] = False  # no response tokens → None
    mask[1] = False
    mask[1, 4] = True  # one token → None
    mask[2] = True  # the whole row
    hidden[3] = torch.randn(d)  # every position of row 3 holds one hidden state → None
    mask[4, ::2] = False  # not contiguous
    hidden[~mask] = float("nan")  # whatever the padding holds never enters
    got = effective_ranks(hidden, mask)
    want = [effective_rank(hidden[i][mask[i]]) for i in range(b)]
    assert got[:2] == [None, None] and got[3] is None and want[3] is None
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if g is not None:
            assert g == pytest.approx(w, abs=1e-10)
    assert effective_ranks(hidden, mask.float()) == got  # a 0/1 float mask reads the same


def test_batched_padding_does_not_change_the_value():
    # the two-direction example of above, padded to T = 9 with rows that are masked out
    z = torch.stack([E[0], -E[0], E[1], -E[1]]) + 1.0
    hidden = torch.cat([torch.randn(2, 3, dtype=torch.float64), z, torch.randn(3, 3, dtype=torch.float64)])[None]
    mask = torch.tensor([[False, False, True, True, True, True, False, False, False]])
    assert effective_ranks(hidden, mask) == [pytest.approx(2.0, abs=1e-12)]
    assert effective_ranks(torch.eye(4)[None], torch.ones(1, 4)) == [pytest.approx(3.0, abs=1e-10)]


def test_batched_shapes():
    assert effective_ranks(torch.zeros(0, 5, 3), torch.zeros(0, 5, dtype=torch.bool)) == []
    assert effective_ranks(torch.zeros(2, 0, 3), torch.zeros(2, 0, dtype=torch.bool)) == [None, None]
    with pytest.raises(ValueError, match="mask"):
        effective_ranks(torch.zeros(2, 5, 3), torch.ones(2, 4))
    assert math.isclose(effective_ranks(torch.eye(5)[None], torch.ones(1, 5, dtype=torch.bool))[0], 4.0)

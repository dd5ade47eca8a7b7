"""Run measures on hand-computed values: unbiased pass@k, the entropy–performance law fit, and
the transfer matrix with BWT and FWT; degenerate inputs included."""

import math
from fractions import Fraction

import pytest

from counterpoint.trainer.analysis import (
    fit_domains,
    fit_entropy_law,
    ks_for,
    law_points,
    pass_at_k,
    pass_at_k_table,
    transfer,
    transfer_from_run,
)
from counterpoint.trainer.curriculum.order import transfer_metrics

# -- pass@k -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "c", "k", "want"),
    [
        (4, 1, 1, 0.25),  # 1 − C(3,1)/C(4,1) = 1 − 3/4
        (4, 1, 2, 0.5),  # 1 − C(3,2)/C(4,2) = 1 − 3/6
        (4, 2, 2, 5 / 6),  # 1 − C(2,2)/C(4,2) = 1 − 1/6
        (4, 3, 2, 1.0),  # n − c = 1 < k: every pair holds a correct one
        (4, 0, 3, 0.0),  # nothing correct
        (4, 4, 4, 1.0),
        (5, 2, 3, 0.9),  # 1 − C(3,3)/C(5,3) = 1 − 1/10
        (10, 3, 4, 5 / 6),  # 1 − C(7,4)/C(10,4) = 1 − 35/210
        (7, 3, 1, 3 / 7),  # k = 1 is c/n
        (1000, 1, 1, 0.001),
    ],
)
def test_pass_at_k_values(n, c, k, want):
    assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-12)


def test_pass_at_k_is_stable_where_binomials_are_huge():
    # C(400, 150) has ~110 digits; the exact value from integer binomials, as a fraction
    exact = 1 - Fraction(math.comb(400 - 37, 150), math.comb(400, 150))
    assert pass_at_k(400, 37, 150) == pytest.approx(float(exact), rel=1e-12)
    assert 0.0 <= pass_at_k(10_000, 1, 5_000) <= 1.0  # = 1 − 5000/10000 = 0.5
    assert pass_at_k(10_000, 1, 5_000) == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize(
    ("n", "c", "k", "match"),
    [
        (4, 1, 5, "k must be in 1..n"),
        (4, 1, 0, "k must be in 1..n"),
        (0, 0, 1, "k must be in 1..n"),
        (4, 5, 2, "correct out of only"),
        (-1, 0, 1, "non-negative"),
        (4, -1, 1, "non-negative"),
        (4, 1, -2, "non-negative"),
        (4.0, 1, 1, "integers"),
    ],
)
def test_pass_at_k_rejects_bad_counts(n, c, k, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)


def test_ks_for():
    assert ks_for(0) == []
    assert ks_for(1) == [1]
    assert ks_for(2) == [1, 2]
    assert ks_for(3) == [1, 2, 3]
    assert ks_for(6) == [1, 2, 4, 6]
    assert ks_for(8) == [1, 2, 4, 8]
    assert ks_for(16) == [1, 2, 4, 8, 16]
    with pytest.raises(ValueError):
        ks_for(-1)


def test_pass_at_k_table_same_n():
    # (4, 1): pass@1 1/4, pass@2 1/2, pass@4 1;  (4, 2): pass@1 1/2, pass@2 5/6, pass@4 1
    table = pass_at_k_table([(4, 1), (4, 2)])
    assert list(table) == ["pass@1", "pass@2", "pass@4"]
    assert table["pass@1"] == pytest.approx((0.25 + 0.5) / 2)  # 0.375
    assert table["pass@2"] == pytest.approx((0.5 + 5 / 6) / 2)  # 2/3
    assert table["pass@4"] == pytest.approx(1.0)


def test_pass_at_k_table_mixed_n_uses_prompts_with_enough_samples():
    # (2, 1): pass@1 1/2, pass@2 1 (n − c = 1 < 2);  (4, 0): 0 for every k
    table = pass_at_k_table([(2, 1), (4, 0)])
    assert table == {
        "pass@1": pytest.approx(0.25),  # (1/2 + 0) / 2
        "pass@2": pytest.approx(0.5),  # (1 + 0) / 2
        "pass@4": pytest.approx(0.0),  # only (4, 0) has n ≥ 4
    }
    assert pass_at_k_table([(2, 1), (4, 0)], ks=[8, 1]) == {"pass@1": pytest.approx(0.25)}  # no prompt has 8
    assert pass_at_k_table([]) == {}
    with pytest.raises(ValueError):
        pass_at_k_table([(2, 3)])


# -- the entropy–performance law ------------------------------------------------------------------------


def test_law_recovers_exact_parameters():
    a, b = 0.5, 1.2
    h = [1.0, 0.8, 0.5, 0.2, 0.0]
    r = [-a * math.exp(x) + b for x in h]
    fit = fit_entropy_law(h, r)
    assert fit["a"] == pytest.approx(a) and fit["b"] == pytest.approx(b)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["ceiling"] == pytest.approx(0.7)  # b − a
    assert fit["points"] == 5
    # m = max(2, ceil(0.2 · 5) = 1) = 2 fitting points, 3 predicted, exactly
    assert fit["holdout"] == {
        "fit_points": 2,
        "predicted_points": 3,
        "mean_abs_error": pytest.approx(0.0, abs=1e-12),
        "max_abs_error": pytest.approx(0.0, abs=1e-12),
    }


def test_law_least_squares_by_hand():
    # x = exp(H) = 1, 2, 3 and R = 3, 2, 2:  x̄ = 2, R̄ = 7/3, Sxx = 2,
    # Sxy = (−1)(2/3) + 0 + (1)(−1/3) = −1 → slope −1/2 → a = 1/2, b = 7/3 + 1/2 · 2 = 10/3
    # fitted 17/6, 7/3, 11/6; residuals 1/6, −1/3, 1/6 → SS_res = 6/36 = 1/6
    # SS_tot = 4/9 + 1/9 + 1/9 = 2/3 → r2 = 1 − (1/6)/(2/3) = 3/4; ceiling = 10/3 − 1/2 = 17/6
    fit = fit_entropy_law([math.log(1), math.log(2), math.log(3)], [3.0, 2.0, 2.0])
    assert fit["a"] == pytest.approx(0.5)
    assert fit["b"] == pytest.approx(10 / 3)
    assert fit["r2"] == pytest.approx(0.75)
    assert fit["ceiling"] == pytest.approx(17 / 6)
    # holdout: m = max(2, ceil(0.6)) = 2: the line through (1, 3), (2, 2) is R = −x + 4 → predicts
    # 1 at x = 3 where the score is 2: error 1
    assert fit["holdout"] == {
        "fit_points": 2,
        "predicted_points": 1,
        "mean_abs_error": pytest.approx(1.0),
        "max_abs_error": pytest.approx(1.0),
    }
    # fraction 0.5 of 3 → ceil(1.5) = 2, the same split; 1.0 → nothing left to predict
    assert (
        fit_entropy_law([0.0, math.log(2), math.log(3)], [3, 2, 2], holdout_fraction=0.5)["holdout"]["fit_points"] == 2
    )
    assert fit_entropy_law([0.0, math.log(2), math.log(3)], [3, 2, 2], holdout_fraction=1.0)["holdout"] is None


def test_law_degenerate_inputs():
    assert fit_entropy_law([], []) is None
    assert fit_entropy_law([0.5], [0.3]) is None  # one point
    assert fit_entropy_law([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]) is None  # constant exp(H): a, b undetermined
    two = fit_entropy_law([0.0, math.log(2)], [1.0, 0.0])  # the line through (1, 1), (2, 0): a = 1, b = 2
    assert two["a"] == pytest.approx(1.0) and two["b"] == pytest.approx(2.0) and two["r2"] == pytest.approx(1.0)
    assert two["holdout"] is None  # fewer than 3 points
    flat = fit_entropy_law([1.0, 0.5, 0.1], [0.4, 0.4, 0.4])  # constant score: a = 0, b = 0.4, r2 undefined
    assert flat["a"] == pytest.approx(0.0, abs=1e-12) and flat["b"] == pytest.approx(0.4) and flat["r2"] is None
    # the first m = 2 points share one entropy: the whole fit exists, the holdout fit does not
    assert fit_entropy_law([0.5, 0.5, 1.0], [0.1, 0.2, 0.0])["holdout"] is None
    with pytest.raises(ValueError, match="entropies but"):
        fit_entropy_law([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="holdout_fraction"):
        fit_entropy_law([0.1, 0.2], [0.3, 0.4], holdout_fraction=0.0)
    with pytest.raises(ValueError, match="finite"):
        fit_entropy_law([0.1, float("nan")], [0.3, 0.4])


def _train(step, **entropy):
    return {
        "kind": "train",
        "step": step,
        "domains": {d: {"entropy_mean": e, "reward_mean": 0.0} for d, e in entropy.items()},
    }


def _eval(step, **scores):
    domains = {d: {"accuracy": acc, "reward_mean": rew} for d, (acc, rew) in scores.items()}
    return {"kind": "eval", "step": step, "domains": domains}


def _boundary(step, stage, domains):
    return {"event": "stage_boundary", "step": step, "after_stage": stage, "stage_domains": domains, "eval_step": step}


RUN = [
    _eval(0, m=(0.1, 0.1), c=(None, 0.0)),  # step 0: no training before it, no point
    _train(1, m=1.0),
    _train(2, m=0.8),
    _eval(2, m=(0.3, 0.5), c=(None, 0.2)),  # m: H = (1.0 + 0.8)/2 = 0.9, R = accuracy 0.3; c: no entropy
    _train(3, m=0.6, c=0.9),
    _train(4, c=0.7),
    _eval(4, m=(None, 0.7), c=(None, 0.4)),  # m: H = 0.6 (step 3 only), R = reward_mean 0.7; c: H = 0.8
    _eval(4, m=(0.9, 0.9)),  # a second eval at step 4: empty window (4, 4], skipped
    _eval(6, m=(0.5, 0.5)),  # no train record in (4, 6]: skipped
]


def test_law_points_windows_and_scores():
    assert [p[1:] for p in law_points(RUN, "m")] == [(pytest.approx(0.9), 0.3), (pytest.approx(0.6), 0.7)]
    assert [p[0] for p in law_points(RUN, "m")] == [2, 4]
    assert [p[1:] for p in law_points(RUN, "c")] == [(pytest.approx(0.8), 0.4)]  # mean of 0.9 and 0.7
    assert law_points(RUN, "absent") == []
    # a resumed run logs step 3 again: the last record counts, once
    assert law_points([*RUN[:5], _train(3, m=0.4), *RUN[5:]], "m")[1][1:] == (pytest.approx(0.4), 0.7)


def test_fit_domains():
    fits = fit_domains(RUN)
    assert set(fits) == {"m"}  # c has one point
    # two points (H, R) = (0.9, 0.3), (0.6, 0.7): the line through them in x = exp(H):
    # slope = (0.7 − 0.3) / (e^0.6 − e^0.9) → a = 0.4 / (e^0.9 − e^0.6), b = 0.3 + a·e^0.9
    a = 0.4 / (math.exp(0.9) - math.exp(0.6))
    assert fits["m"]["a"] == pytest.approx(a)
    assert fits["m"]["b"] == pytest.approx(0.3 + a * math.exp(0.9))
    assert fits["m"]["points"] == 2
    assert fit_domains([]) == {}


# -- transfer ---------------------------------------------------------------------------------------------

SEQ_R = [
    {"a": 0.1, "b": 0.2, "c": 0.3},  # initial
    {"a": 0.6, "b": 0.25, "c": 0.3},  # after A
    {"a": 0.5, "b": 0.7, "c": 0.35},  # after B
    {"a": 0.45, "b": 0.6, "c": 0.8},  # after C
]
SEQ_STAGES = [{"name": "A", "domains": ["a"]}, {"name": "B", "domains": ["b"]}, {"name": "C", "domains": ["c"]}]


def _rows(labels, scores):
    return [{"label": label, "scores": s} for label, s in zip(labels, scores, strict=True)]


def test_transfer_sequential_by_hand_and_against_gem():
    out = transfer(_rows(["initial", "A", "B", "C"], SEQ_R), SEQ_STAGES)
    assert out["stages"] == ["initial", "A", "B", "C"] and out["domains"] == ["a", "b", "c"]
    assert out["R"][2] == [0.5, 0.7, 0.35]
    # BWT: a = R[3]a − R[1]a = 0.45 − 0.6 = −0.15; b = R[3]b − R[2]b = 0.6 − 0.7 = −0.1; c trained last
    assert out["bwt"] == {"a": pytest.approx(-0.15), "b": pytest.approx(-0.1), "c": None}
    assert out["bwt_mean"] == pytest.approx(-0.125)
    # FWT: a first trained at stage 1; b = R[1]b − R[0]b = 0.05; c = R[2]c − R[0]c = 0.35 − 0.3 = 0.05
    assert out["fwt"] == {"a": None, "b": pytest.approx(0.05), "c": pytest.approx(0.05)}
    assert out["fwt_mean"] == pytest.approx(0.05)
    # the same numbers as the curriculum's square-matrix form of GEM's definitions
    square = [[row[d] for d in "abc"] for row in SEQ_R[1:]]
    gem = transfer_metrics(square, baseline=[SEQ_R[0][d] for d in "abc"])
    assert out["bwt_mean"] == pytest.approx(gem.bwt) and out["fwt_mean"] == pytest.approx(gem.fwt)


def test_transfer_joint_and_repeated_stages():
    # S1 trains a and b, S2 c, S3 a again; x is evaluated but never trained
    scores = [
        {"a": 0.0, "b": 0.0, "c": 0.1, "x": 0.5},
        {"a": 0.5, "b": 0.4, "c": 0.2, "x": 0.5},
        {"a": 0.3, "b": 0.35, "c": 0.9, "x": 0.6},
        {"a": 0.7, "b": 0.3, "c": 0.6, "x": 0.4},
    ]
    stages = [{"name": "S1", "domains": ["a", "b"]}, {"name": "S2", "domains": ["c"]}, {"name": "S3", "domains": ["a"]}]
    out = transfer(_rows(["initial", "S1", "S2", "S3"], scores), stages)
    assert out["domains"] == ["a", "b", "c", "x"]
    # BWT: a's last stage is 3 = T → None; b: R[3]b − R[1]b = 0.3 − 0.4 = −0.1; c: R[3]c − R[2]c = −0.3
    assert out["bwt"] == {"a": None, "b": pytest.approx(-0.1), "c": pytest.approx(-0.3), "x": None}
    assert out["bwt_mean"] == pytest.approx(-0.2)
    # FWT: a and b first trained at stage 1 → None; c: R[1]c − R[0]c = 0.2 − 0.1 = 0.1
    assert out["fwt"] == {"a": None, "b": None, "c": pytest.approx(0.1), "x": None}
    assert out["fwt_mean"] == pytest.approx(0.1)
    # a score missing after the last stage: None in R, c's BWT undefined, the mean over b alone
    del scores[3]["c"]
    out = transfer(_rows(["initial", "S1", "S2", "S3"], scores), stages)
    assert out["R"][3] == [0.7, 0.3, None, 0.4]
    assert out["bwt"]["c"] is None and out["bwt_mean"] == pytest.approx(-0.1)


def test_transfer_degenerate_and_partial_runs():
    assert transfer([], SEQ_STAGES) is None
    assert transfer(_rows(["initial"], SEQ_R[:1]), SEQ_STAGES) is None
    # stopped after stage A: T = 1; a was trained in the last stage, b and c not yet → nothing defined
    out = transfer(_rows(["initial", "A"], SEQ_R[:2]), SEQ_STAGES)
    assert out["bwt"] == {"a": None, "b": None, "c": None} and out["bwt_mean"] is None and out["fwt_mean"] is None
    # after A and B: a's BWT = R[2]a − R[1]a = −0.1; b's FWT = 0.05
    out = transfer(_rows(["initial", "A", "B"], SEQ_R[:3]), SEQ_STAGES)
    assert out["bwt_mean"] == pytest.approx(-0.1) and out["fwt_mean"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="labelled"):
        transfer(_rows(["initial", "B", "A", "C"], SEQ_R), SEQ_STAGES)
    with pytest.raises(ValueError, match="stages"):
        transfer(_rows(["initial", "A", "B", "C"], SEQ_R), SEQ_STAGES[:2])


def test_transfer_from_run():
    records = [
        _eval(0, a=(0.1, 0.1), b=(None, 0.2)),
        _train(1, a=1.0),
        _eval(3, a=(0.4, 0.4), b=(None, 0.3)),  # a periodic eval, not a row
        _eval(5, a=(0.6, 0.6), b=(None, 0.25)),
        _train(6, b=1.0),
        _eval(10, a=(0.5, 0.5), b=(None, 0.7)),
    ]
    events = [
        {"event": "eval", "step": 0},
        _boundary(5, "s1", ["a"]),
        _boundary(10, "s2", ["b"]),
        _boundary(10, "s3", ["a", "b"]),  # the end, same step: the first counts
    ]
    out = transfer_from_run(records, events)
    assert out["stages"] == ["initial", "s1", "s2"]
    assert out["R"] == [[0.1, 0.2], [0.6, 0.25], [0.5, 0.7]]  # b has no accuracy: its reward_mean
    assert out["bwt"] == {"a": pytest.approx(-0.1), "b": None}  # 0.5 − 0.6
    assert out["fwt"] == {"a": None, "b": pytest.approx(0.05)}  # 0.25 − 0.2
    assert transfer_from_run(records, events[:1]) is None  # no boundary
    assert transfer_from_run(records[1:], events) is None  # no initial eval
    assert transfer_from_run([], []) is None
    # a boundary whose evaluation is not in the records (dropped by a resume) is no row
    assert transfer_from_run(records[:4], events)["stages"] == ["initial", "s1"]

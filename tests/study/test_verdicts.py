"""Run figures, intervals over seeds and the verdicts built on them, on hand-made run folders."""

from __future__ import annotations

import math
import statistics

import pytest

from counterpoint.study.results import interval, load_run
from counterpoint.study.spec import ClaimTest
from counterpoint.study.verdicts import FAILED, HELD, INCONCLUSIVE, judge

from .fake_runs import write_run


def test_interval_is_the_t_interval():
    iv = interval([0.1, 0.2, 0.4])
    sd = statistics.stdev([0.1, 0.2, 0.4])
    assert iv.mean == pytest.approx(0.7 / 3)
    assert iv.half == pytest.approx(4.303 * sd / math.sqrt(3))
    one = interval([0.5, None, float("nan")])
    assert one.n == 1 and one.half is None and "n=1" in one.text()
    assert interval([]) is None


def test_a_run_folders_figures(tmp_path):
    start = {
        "math": {"accuracy": 0.4, "pass@1": 0.4, "pass@2": 0.5, "pass@4": 0.6},
        "creative": {"accuracy": None, "reward_mean": 0.7, "distinct_2": 0.9, "semantic_diversity": 0.5},
    }
    end = {
        "math": {"accuracy": 0.5, "pass@1": 0.5, "pass@2": 0.55, "pass@4": 0.58},
        "creative": {"accuracy": None, "reward_mean": 0.9, "distinct_2": 0.2, "semantic_diversity": 0.1},
    }
    path = write_run(
        tmp_path / "r",
        steps=20,
        start=start,
        end=end,
        entropy={"math": (0.6, 0.2), "creative": (1.0, 1.0)},
        law_error={"math": 0.03},
        transfer={"bwt": {"math": -0.1, "creative": None}, "bwt_mean": -0.1},
    )
    r = load_run("c", 0, path)
    assert r.end["math.accuracy"] == 0.5 and r.start["math.accuracy"] == 0.4
    assert r.end["math.pass@k"] == 0.58 and r.end["math.k"] == 4.0 and r.end["math.pass@1"] == 0.5
    assert r.end["creative.reward"] == 0.9 and r.end["creative.distinct_2"] == 0.2
    assert "creative.accuracy" not in r.end  # None is not a figure
    assert r.end["score"] == pytest.approx((0.5 + 0.9) / 2)
    # entropy: mean of the first and last 5 training steps (linear 0.6 -> 0.2 over 20 steps)
    per_step = [0.6 - 0.4 * i / 19 for i in range(20)]
    assert r.start["math.entropy"] == pytest.approx(statistics.fmean(per_step[:5]))
    assert r.end["math.entropy"] == pytest.approx(statistics.fmean(per_step[-5:]))
    assert r.end["math.law_error"] == 0.03 and r.end["math.bwt"] == -0.1 and r.end["bwt"] == -0.1
    assert "creative.bwt" not in r.end
    assert len(r.curves["math"]["entropy_mean"]) == 20 and r.eval_curves["math"]["accuracy"] == [(0, 0.4), (20, 0.5)]


def test_a_short_run_never_averages_the_same_steps_for_start_and_end(tmp_path):
    r = load_run("c", 0, write_run(tmp_path / "r", steps=4, entropy={"math": (0.8, 0.2)}))
    assert r.start["math.entropy"] == pytest.approx(0.7) and r.end["math.entropy"] == pytest.approx(0.3)


def _runs(tmp_path, name, changes, metric_start=0.5):
    """One run per seed whose math entropy moves by changes[seed]."""
    return [
        load_run(
            name,
            s,
            write_run(tmp_path / name / str(s), steps=10, seed=s, entropy={"math": (metric_start, metric_start + c)}),
        )
        for s, c in enumerate(changes)
    ]


@pytest.mark.parametrize(
    ("changes", "expect", "outcome"),
    [
        ([-0.2, -0.25, -0.3], "down", HELD),
        ([-0.2, -0.25, -0.3], "up", FAILED),
        ([-0.2, 0.1, 0.05], "down", INCONCLUSIVE),
        ([-0.2], "down", INCONCLUSIVE),  # one seed: no interval
    ],
)
def test_change_verdicts(tmp_path, changes, expect, outcome):
    runs = {"a": _runs(tmp_path, "a", changes)}
    v = judge(ClaimTest(test="change", condition="a", metric="math.entropy", expect=expect), runs)
    assert v.outcome == outcome, v.evidence
    assert "math.entropy end − start in a" in v.evidence


def test_a_change_past_a_margin(tmp_path):
    # fell a little on every seed (first-5 against last-5 means: -0.011, -0.017, -0.022; interval
    # about -0.030..-0.003): "fell by less than 5 points" holds, "rose" does not, 2 points straddles
    runs = {"a": _runs(tmp_path, "a", [-0.02, -0.03, -0.04])}
    small_fall = ClaimTest(test="change", condition="a", metric="math.entropy", expect="up", margin=-0.05)
    v = judge(small_fall, runs)
    assert v.outcome == HELD and "(expected > -0.05)" in v.evidence
    assert judge(small_fall.model_copy(update={"margin": 0.0}), runs).outcome == FAILED
    assert judge(small_fall.model_copy(update={"margin": -0.02}), runs).outcome == INCONCLUSIVE


def _end_runs(tmp_path, name, accs):
    return [
        load_run(name, s, write_run(tmp_path / name / str(s), seed=s, end={"math": {"accuracy": a}}))
        for s, a in enumerate(accs)
    ]


def test_difference_is_paired_by_seed_and_respects_the_margin(tmp_path):
    # b is 0.02-0.03 below a on every seed although the seeds spread widely
    runs = {"a": _end_runs(tmp_path, "a", [0.3, 0.5, 0.7]), "b": _end_runs(tmp_path, "b", [0.28, 0.47, 0.675])}
    within = ClaimTest(
        test="difference", condition="b", than="a", metric="math.accuracy", expect="greater", margin=-0.05
    )
    assert judge(within, runs).outcome == HELD
    better = ClaimTest(test="difference", condition="b", than="a", metric="math.accuracy", expect="greater")
    assert judge(better, runs).outcome == FAILED
    assert (
        judge(
            ClaimTest(test="difference", condition="b", than="zz", metric="math.accuracy", expect="less"), runs
        ).outcome
        == INCONCLUSIVE
    )


def test_thresholds_and_groups(tmp_path):
    runs = {"a": _end_runs(tmp_path, "a", [0.6, 0.62, 0.64]), "b": _end_runs(tmp_path, "b", [0.1, 0.5, 0.9])}
    high = ClaimTest(test="at_least", condition="a", metric="math.accuracy", value=0.5)
    low = ClaimTest(test="at_most", condition="a", metric="math.accuracy", value=0.5)
    wide = ClaimTest(test="at_least", condition="b", metric="math.accuracy", value=0.5)
    missing = ClaimTest(test="at_least", condition="a", metric="code.accuracy", value=0.5)
    assert judge(high, runs).outcome == HELD and judge(low, runs).outcome == FAILED
    assert judge(wide, runs).outcome == INCONCLUSIVE
    assert judge(missing, runs).outcome == INCONCLUSIVE and "not measured" in judge(missing, runs).evidence
    group = lambda kind, *tests: ClaimTest(test=kind, tests=list(tests))  # noqa: E731
    assert judge(group("all", high, wide), runs).outcome == INCONCLUSIVE
    # a group's evidence names each test by condition and metric, so two tests of one condition differ
    both = judge(group("all", high, missing), runs).evidence
    assert "a math.accuracy held" in both and "a code.accuracy inconclusive" in both
    assert judge(group("all", high, low), runs).outcome == FAILED
    assert judge(group("any", low, wide), runs).outcome == INCONCLUSIVE
    assert judge(group("any", low, high), runs).outcome == HELD
    assert judge(group("any", low, low), runs).outcome == FAILED
    nested = judge(group("any", group("all", high, low), high), runs)
    assert nested.outcome == HELD and len(nested.parts) == 2 and nested.parts[0].outcome == FAILED

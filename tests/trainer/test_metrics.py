"""Per-domain step metrics: reward outcomes counted per domain and reason, the bound on rewards
that failed on our side (checked before the update), and the one list of per-domain metric names
that the advance rules are validated against."""

import pickle

import pytest
import torch

from counterpoint.rollout.diversity import DIVERSITY_METRICS as MEASURED
from counterpoint.rollout.records import Prompt, RewardError, Sample, Score, ScoredSample
from counterpoint.trainer.curriculum.metric_names import (
    DIVERSITY_METRICS,
    ENTROPY_METRICS,
    EVAL_METRICS,
    LEARNER_METRICS,
    RULE_METRICS,
    SAMPLE_METRICS,
)
from counterpoint.trainer.loop import progress_line, train
from counterpoint.trainer.metrics import (
    DOMAIN_METRICS,
    RewardFailure,
    check_reward_failures,
    merge_learner_sums,
    sample_metrics,
)
from counterpoint.trainer.run_folder import RunFolder

from .fakes import fake_config, fake_parts


def _row(domain: str, prompt: int, score: Score) -> ScoredSample:
    p = Prompt(domain, f"{domain}/train/{prompt}", "q")
    return ScoredSample(Sample(p, [1], [5, 6], [-1.0, -1.0], "a", "stop", 0), score)


def test_every_per_domain_metric_a_step_reports_is_a_known_name_and_every_name_is_reported(tmp_path):
    cfg = fake_config(2, eval_every=1)
    run = RunFolder(tmp_path / "run")
    train(cfg, fake_parts(cfg, run), run)
    records = run.read_metrics()
    for r in records:
        known = set(DOMAIN_METRICS) | (set(EVAL_METRICS) if r["kind"] == "eval" else set())
        for domain, m in r["domains"].items():
            assert set(m) <= known, (r["kind"], domain, set(m) - known)
    # a train step of a domain with an entropy target (creative) and one without (math) reports them
    # all, but for those this fake run cannot have: the sentence encoder's (the fakes set
    # semantic_groups to 0), code's (no code domain), the rank (not due in 2 steps) and the
    # off-policy correction's (an on-policy run trains on no stale sample)
    absent = {"semantic_diversity", "vendi", "ast_shapes", "functional_classes"}
    absent |= {f"effective_{k}" for k in absent} | {"effective_rank"}
    absent |= {"stale_token_fraction", "is_weight_mean", "is_truncated_fraction"}
    train_keys = {k for r in records if r["kind"] == "train" for m in r["domains"].values() for k in m}
    assert train_keys == set(DOMAIN_METRICS) - absent


def test_the_diversity_names_are_the_measures_names():
    assert set(DIVERSITY_METRICS) - {"diversity_seconds", "embedding_seconds"} == set(MEASURED)


def test_each_producer_reports_exactly_its_declared_names():
    rows = [_row("math", 0, Score(1.0, True)), _row("math", 0, Score(0.0, False, error="wrong_answer"))]
    assert set(sample_metrics(rows, torch.tensor([1.0, -1.0]))["math"]) == set(SAMPLE_METRICS)
    assert set(merge_learner_sums([{"domains": {"math": {"tokens": 2.0}}}])["math"]) == set(LEARNER_METRICS)
    assert RULE_METRICS == set(DOMAIN_METRICS) - {"reward_errors"}
    assert {"entropy_coef", "entropy_alpha", "entropy_target", "entropy_measured"} == set(ENTROPY_METRICS)


def test_sample_metrics_count_each_reason_and_the_share_that_failed_on_our_side():
    rows = [
        _row("math", 0, Score(1.0, True)),
        _row("math", 0, Score(0.0, False, error=RewardError.WRONG_ANSWER)),
        _row("math", 1, Score(0.0, False, error=RewardError.VERIFIER_TIMEOUT)),
        _row("math", 1, Score(0.0, False, error=RewardError.GOLD_UNPARSABLE)),
        _row("code", 2, Score(0.25, False, error=RewardError.WRONG_ANSWER)),
        _row("code", 2, Score(0.0, False, error=RewardError.HARNESS_FAILURE)),
        _row("creative", 3, Score(0.0, None, error=RewardError.GATE_FAILED)),
        _row("creative", 3, Score(0.6, None, error=RewardError.JUDGE_UNPARSABLE)),
        _row("creative", 3, Score(0.8, None)),
    ]
    m = sample_metrics(rows)
    assert m["math"]["reward_errors"] == {"gold_unparsable": 1, "verifier_timeout": 1, "wrong_answer": 1}
    assert m["math"]["reward_failure_fraction"] == 0.5  # the wrong answer is the policy's
    assert m["code"]["reward_errors"] == {"harness_failure": 1, "wrong_answer": 1}
    assert m["code"]["reward_failure_fraction"] == 0.5
    assert m["creative"]["reward_errors"] == {"gate_failed": 1, "judge_unparsable": 1}
    assert m["creative"]["reward_failure_fraction"] == pytest.approx(1 / 3)
    clean = sample_metrics([_row("math", 0, Score(1.0, True))])["math"]
    assert (clean["reward_errors"], clean["reward_failure_fraction"]) == ({}, 0.0)


def test_progress_line_shows_only_the_failures_on_our_side():
    record = {
        "step": 3,
        "seconds": {"step": 2.7},
        "domains": {
            "math": {
                "reward_mean": 0.38,
                "accuracy": 0.38,
                "entropy_mean": 0.37,
                "reward_errors": {"verifier_timeout": 2, "wrong_answer": 5},
            },
            "creative": {
                "reward_mean": 0.75,
                "accuracy": None,
                "entropy_mean": 0.93,
                "reward_errors": {"gate_failed": 1},
            },
        },
    }
    line = progress_line(record, 10)
    assert line == ("step 3/10 | math: R 0.38 acc 0.38 H 0.37 err verifier_timeout=2 | creative: R 0.75 H 0.93 | 2.7s")


def test_reward_errors_reach_train_and_eval_records_and_the_run_goes_on_under_the_bound(tmp_path):
    cfg = fake_config(2)
    run = RunFolder(tmp_path / "run")
    parts = fake_parts(cfg, run, reward_failures={"math": (RewardError.VERIFIER_TIMEOUT, 0.25)})
    train(cfg, parts, run)
    records = run.read_metrics()
    steps = [r for r in records if r["kind"] == "train"]
    assert len(steps) == 2 and len(parts.learner.plans) == 2
    for r in steps:
        math = r["domains"]["math"]
        assert math["reward_errors"]["verifier_timeout"] == 2 and math["reward_failure_fraction"] == 0.25
        assert "wrong_answer" in math["reward_errors"] or math["accuracy"] == 1.0
        assert r["domains"]["creative"]["reward_failure_fraction"] == 0.0
        line = progress_line(r, 2)
        assert "math: R" in line and "err verifier_timeout=2 |" in line and "wrong_answer" not in line
    for r in (r for r in records if r["kind"] == "eval"):
        math = r["domains"]["math"]
        assert math["reward_errors"]["verifier_timeout"] == round(0.25 * math["samples"])


def test_a_step_whose_rewards_failed_on_our_side_stops_the_run_before_the_update(tmp_path):
    cfg = fake_config(3)
    run = RunFolder(tmp_path / "run")
    parts = fake_parts(cfg, run, reward_failures={"math": (RewardError.VERIFIER_TIMEOUT, 0.75)})
    with pytest.raises(RewardFailure) as err:
        train(cfg, parts, run)
    assert parts.learner.plans == []  # no update on that batch
    assert [r["kind"] for r in run.read_metrics()] == ["eval"]  # and no step recorded
    message = str(err.value)
    assert "step 1:" in message and "run.max_reward_failure_fraction=0.5" in message
    assert "math: 75% of its samples (verifier_timeout=6)" in message
    assert "domains.math.reward.timeout_seconds" in message  # what to check
    assert "creative" not in message
    again = pickle.loads(pickle.dumps(err.value))
    assert str(again) == message and again.failures == {"math": (0.75, {"verifier_timeout": 6})}


def test_the_bound_is_configured_and_policy_failures_never_count(tmp_path):
    failing = {"math": (RewardError.VERIFIER_TIMEOUT, 0.75)}
    cfg = fake_config(1, max_reward_failure_fraction=0.8)
    run = RunFolder(tmp_path / "tolerant")
    train(cfg, fake_parts(cfg, run, reward_failures=failing), run)
    assert [r["step"] for r in run.read_metrics() if r["kind"] == "train"] == [1]
    # a bound of 0 stops on the first failure on our side, never on wrong answers or failed gates
    cfg = fake_config(2, max_reward_failure_fraction=0.0)
    run = RunFolder(tmp_path / "strict")
    train(cfg, fake_parts(cfg, run), run)
    steps = [r for r in run.read_metrics() if r["kind"] == "train"]
    assert len(steps) == 2 and any(r["domains"]["math"]["reward_errors"] for r in steps)
    run = RunFolder(tmp_path / "strict-judge")
    with pytest.raises(RewardFailure, match=r"creative: 25% of its samples \(judge_unparsable=1\)"):
        train(cfg, fake_parts(cfg, run, reward_failures={"creative": (RewardError.JUDGE_UNPARSABLE, 0.25)}), run)


def test_check_reward_failures_names_every_domain_over_the_bound():
    domains = {
        "math": {"reward_failure_fraction": 0.6, "reward_errors": {"verifier_crash": 3, "wrong_answer": 2}},
        "code": {"reward_failure_fraction": 1.0, "reward_errors": {"harness_failure": 4}},
        "creative": {"reward_failure_fraction": 0.5, "reward_errors": {"judge_unparsable": 2}},
    }
    with pytest.raises(RewardFailure) as err:
        check_reward_failures(domains, 0.5, step=7)
    assert set(err.value.failures) == {"math", "code"}  # 0.5 is not above the bound
    assert err.value.failures["math"] == (0.6, {"verifier_crash": 3})
    assert "bubblewrap" in str(err.value) and "domains.math.reward.memory_mib" in str(err.value)
    check_reward_failures(domains, 1.0, step=7)

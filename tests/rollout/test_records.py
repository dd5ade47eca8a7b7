"""The records that cross actor boundaries: a Score's typed reason and its invariants."""

import pickle

import pytest

from counterpoint.rollout.records import INFRASTRUCTURE_ERRORS, RewardError, Score


def test_a_failed_check_must_say_why_and_a_reason_is_typed():
    with pytest.raises(ValueError, match="must name its error"):
        Score(0.0, False)
    with pytest.raises(ValueError, match="not a valid RewardError"):
        Score(0.0, False, error="timeuot")
    score = Score(0.0, False, {"detail": "no verdict in 2 s"}, "verifier_timeout")
    assert score.error is RewardError.VERIFIER_TIMEOUT and score.infrastructure_failure
    assert Score(0.0).error is None and not Score(0.0).infrastructure_failure  # open-ended, no failure
    assert pickle.loads(pickle.dumps(score)) == score  # crosses Ray actor calls


def test_infrastructure_reasons_are_ours_the_rest_the_policys():
    ours = {"verifier_timeout", "verifier_crash", "gold_unparsable", "harness_failure", "judge_unparsable"}
    ours |= {"plugin_error", "plugin_timeout"}  # the user's reward function: not a verdict on the response
    assert {str(r) for r in INFRASTRUCTURE_ERRORS} == ours
    assert all(r.infrastructure == (r in ours) for r in RewardError)
    assert {"wrong_answer", "no_answer", "timeout", "exception", "memory_limit", "gate_failed"} <= {
        str(r) for r in RewardError if not r.infrastructure
    }

"""Asynchronous rollouts on the real stack: embedded Ray, a vLLM engine generating step t+1 while
two DeepSpeed ranks train on step t, reward actors, the correction of the stale rows.

About a minute on 2 cores. The loop's logic (schedule changes in flight, the bound, resume) is
covered with fakes in tests/trainer/test_async_loop.py; this checks that the real parts keep the
versions and the engine's log-probs that the correction needs.
"""

import pytest

from counterpoint.config import load_config
from counterpoint.trainer.run_folder import RunFolder

from .helpers import SMOKE, small_overrides

pytestmark = pytest.mark.integration


def test_the_engine_generates_the_next_step_while_the_learner_trains(tmp_path, model_cache):
    from counterpoint.cluster.launch import run_training

    cfg = load_config(
        SMOKE,
        overrides=small_overrides(
            tmp_path, model_cache, "run.steps=3", "generation.max_staleness=1", "run.checkpoint_every_steps=0"
        ),
    )
    run = RunFolder(tmp_path / "runs" / "async")
    summary = run_training(cfg, run)
    steps = [r for r in run.read_metrics() if r["kind"] == "train"]
    assert [r["step"] for r in steps] == [1, 2, 3]
    # step 1 was made before anything trained; steps 2 and 3 during the update before them
    assert [r["rollout_policy_version"] for r in steps] == [0, 0, 1]
    assert summary["policy_version"] == 3
    for r, lag in zip(steps, [0, 1, 1]):
        for d, m in r["domains"].items():
            assert m["policy_lag_max"] == lag and m["policy_lag_mean"] == lag, (r["step"], d)
            if lag:
                # every trained token came from the previous policy, with the engine's log-prob
                assert m["stale_token_fraction"] == pytest.approx(1.0)
                assert 0.2 < m["is_weight_mean"] < 5.0 and 0.0 <= m["is_truncated_fraction"] <= 1.0
            else:
                assert "stale_token_fraction" not in m
                assert m["logprob_mismatch_max"] < 1e-3  # on-policy: engine and learner agree
    # a step made ahead reports its wait; the one made in the loop's thread counts its generation
    assert "wait" in steps[1]["seconds"] and "wait" not in steps[0]["seconds"]
    components = next(e for e in run.read_events() if e["event"] == "components")["components"]
    assert any(c.startswith("threads ") and "(overlapped" in c for c in components), components

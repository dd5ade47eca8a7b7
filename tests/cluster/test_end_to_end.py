"""Two steps of the real loop: embedded Ray, a vLLM engine, reward actors, 2 DeepSpeed ranks.

Slow (about a minute and a half on 2 cores): it starts every real component. The tiny model is
built with only a few warm-start steps into a temporary cache shared by the integration tests
(conftest.py), so the test does not depend on the cached default model.
"""

import json
import math

import pytest
import torch

from counterpoint.config import load_config
from counterpoint.trainer.run_folder import RunFolder

from .helpers import SMOKE, informative, small_overrides

pytestmark = pytest.mark.integration


def test_two_real_steps(tmp_path, model_cache):
    from counterpoint.cluster.launch import run_training

    # a large step, so a rollout engine left with stale weights would show in the mismatch
    cfg = load_config(
        SMOKE,
        overrides=small_overrides(
            tmp_path,
            model_cache,
            "learner.learning_rate=0.01",
            "metrics.effective_rank_every_steps=2",
            "metrics.diversity.semantic_every_steps=1",
            "metrics.diversity.semantic_groups=1",  # (the smoke config turns the encoder off)
            "metrics.diversity.semantic_eval_groups=16",
        ),
    )
    run = RunFolder(tmp_path / "runs" / "it")
    summary = run_training(cfg, run)

    records = run.read_metrics()
    steps = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in steps] == [1, 2]
    assert [r["rollout_policy_version"] for r in steps] == [0, 1]
    for r in steps:
        assert set(r["domains"]) == {"math", "code", "creative"}
        for m in r["domains"].values():
            assert m["samples"] == 8
            assert m["tokens"] > 0 and 0.0 < m["entropy_mean"] < 7.0
            assert math.isfinite(m["reward_mean"]) and 0.0 <= m["reward_mean"] <= 1.0
            # reward latency and throughput per reward kind
            # (reward_seconds is rounded to 0.1 ms, a large share of a millisecond-long call, and the
            # rate to 0.01 samples/s, a large share of a slow one)
            seconds, rate = m["reward_seconds"], m["reward_samples_per_second"]
            assert seconds > 0 and rate * seconds == pytest.approx(8, abs=8 * 6e-5 / seconds + 0.005 * seconds)
    # the measures of range, from the real reward actors (MiniLM included) and the real learner
    for r in steps:
        for d, m in r["domains"].items():
            assert 0.0 < m["distinct_1"] <= 1.0 and 0.0 <= m["self_bleu"] <= 1.0, (d, m)
            assert 1 <= m["unique_trajectories"] <= 4 and 1.0 <= m["vendi"] <= 4.0 + 1e-6
            assert 0.0 <= m["semantic_diversity"] <= 2.0
            assert m["diversity_seconds"] >= m["embedding_seconds"] > 0
        assert 1 <= r["domains"]["code"]["functional_classes"] <= 4 and r["domains"]["code"]["ast_shapes"] <= 4
        ranks = [m.get("effective_rank") for m in r["domains"].values()]
        if r["step"] == 2:  # (None: a domain whose responses were all one token long, no rank to take)
            assert any(v is not None for v in ranks) and all(v is None or 1.0 <= v <= 8.0 for v in ranks)
        else:
            assert ranks == [None] * 3
    assert steps[1]["seconds"]["effective_rank"] > 0 and steps[0]["seconds"]["effective_rank"] == 0
    last_eval = [r for r in records if r["kind"] == "eval"][-1]
    assert last_eval["domains"]["math"]["pass@1"] == pytest.approx(last_eval["domains"]["math"]["accuracy"])
    assert set(summary["entropy_law"]) <= {"math", "code", "creative"} and summary["transfer"] is None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"scalars": 0})
    board.Reload()
    assert [e.step for e in board.Scalars("math/reward_mean")] == [1, 2]
    assert [e.step for e in board.Scalars("code/eval/accuracy")] == [0, 2]
    assert (run.path / "report" / "report.html").is_file()
    # no entropy bonus: a step has a gradient exactly when one of its groups had unequal rewards
    assert all((r["grad_norm"] > 0) == informative(r) for r in steps), [(r["grad_norm"], informative(r)) for r in steps]
    assert any(informative(r) for r in steps)
    # After the weight sync the engine's log-probs match the learner's: fp32 on both sides.
    # With stale weights (lr 0.01) they would differ by far more than this.
    assert max(m["logprob_mismatch_max"] for m in steps[1]["domains"].values()) < 1e-3
    assert [r["step"] for r in records if r["kind"] == "eval"] == [0, 2]
    # every step records the schedule version it applied; the controller persisted it
    assert [r["schedule"]["version"] for r in steps] == [1, 1]
    from counterpoint.trainer.curriculum.controller import ScheduleController

    status = ScheduleController(run.path).status()
    assert status["status"] == "finished" and status["step"] == 2

    events = [json.loads(line)["event"] for line in (run.path / "events.jsonl").read_text().splitlines()]
    assert events[:2] == ["start", "components"] and events[-1] == "end"
    components = json.loads((run.path / "events.jsonl").read_text().splitlines()[1])["components"]
    assert any(c.startswith("vllm ") for c in components) and any("x2 ranks" in c for c in components)
    assert json.loads((run.path / "config.json").read_text())["run"]["steps"] == 2
    assert (run.path / "checkpoint" / "learner").is_dir()
    assert json.loads((run.path / "checkpoint" / "driver_state.json").read_text())["step"] == 2
    assert summary["policy_version"] == 2

    from transformers import AutoModelForCausalLM

    final = AutoModelForCausalLM.from_pretrained(run.path / "final_model")
    base = AutoModelForCausalLM.from_pretrained(next((model_cache / "models").glob("tiny-*")))
    changed = any(not torch.equal(a, b) for a, b in zip(final.state_dict().values(), base.state_dict().values()))
    assert changed, "two learner steps must change the saved policy"

    import ray

    assert not ray.is_initialized()  # the run shut its own cluster down

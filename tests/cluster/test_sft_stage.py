"""An SFT stage on the real actors: demonstrations through the same learner update as RL steps
(embedded Ray, 2 DeepSpeed ranks, the vLLM engine receiving the new weights)."""

import json

import pytest
import torch

from counterpoint.config import load_config
from counterpoint.trainer.run_folder import RunFolder

from .helpers import SMOKE, small_overrides

pytestmark = pytest.mark.integration

SFT_ONLY = (
    "schedule.policy.stages=[{name: demos, kind: sft, domains: {math: {weight: 1}, creative: {weight: 1}},"
    " advance: {type: steps, steps: 1}}]"
)


def test_sft_stage_trains_demonstrations_and_changes_the_weights(tmp_path, model_cache):
    from transformers import AutoModelForCausalLM

    from counterpoint.cluster.launch import run_training

    # no entropy bonus: the only gradient is the demonstrations' negative log-likelihood
    cfg = load_config(
        SMOKE,
        overrides=small_overrides(
            tmp_path, model_cache, "run.steps=1", "schedule.policy=stages", SFT_ONLY, "learner.entropy.coef=0.0"
        ),
    )
    run = RunFolder(tmp_path / "runs" / "sft")
    run_training(cfg, run)

    steps = [r for r in run.read_metrics() if r["kind"] == "train"]
    assert [(r["step"], r["update"], r["schedule"]["kind"]) for r in steps] == [(1, "sft", "sft")]
    step = steps[0]
    assert "generate" not in step["seconds"] and "update" in step["seconds"]  # nothing sampled
    assert set(step["domains"]) == {"math", "creative"}
    assert all(m["samples"] == 3 and m["tokens"] > 0 for m in step["domains"].values())  # one demo a prompt
    assert step["grad_norm"] > 0 and step["policy_version"] == 1
    applied = json.loads((run.path / "controller.json").read_text())["applied"]
    assert [(a["stage"], a["from_step"], a["to_step"]) for a in applied] == [("demos", 1, 1)]

    final = AutoModelForCausalLM.from_pretrained(run.path / "final_model")
    base = AutoModelForCausalLM.from_pretrained(next((model_cache / "models").glob("tiny-*")))
    changed = [n for (n, a), b in zip(final.state_dict().items(), base.state_dict().values()) if not torch.equal(a, b)]
    assert changed, "one SFT step must change the saved policy"

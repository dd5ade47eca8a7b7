"""The RL loop with in-process fakes for the engine and learner (the real reward functions).

The fakes are named as fakes: this tests the loop's logic (planning, grouping, metrics, versions,
evaluation, run folder), not generation or learning, which the integration test covers.
"""

import json
import random

import pytest
import torch

from counterpoint.rollout.records import Sample, ScoredSample
from counterpoint.rollout.tasks import TaskSource, build_domain
from counterpoint.trainer.entropy_control import AdaptiveEntropyController, DomainEntropyCoefficients
from counterpoint.trainer.loop import LoopSettings, RunParts, train
from counterpoint.trainer.planning import FixedPlanner
from counterpoint.trainer.metrics import merge_learner_sums
from counterpoint.trainer.run_folder import RunFolder


def fake_encode(prompt, demo):
    """A fake tokenizer: one id per character."""
    return [ord(c) % 50 for c in prompt], [ord(c) % 50 for c in demo] + [0]


class FakeRollout:
    """Answers math prompts with the right answer half the time; random words elsewhere."""

    def __init__(self):
        self.version = 0
        self.rng = random.Random(0)

    def generate(self, prompts, *, samples_per_prompt, max_tokens, temperature):
        out = []
        for p in prompts:
            for _ in range(samples_per_prompt):
                if p.domain == "math":
                    text = " " + (p.reference["answer"] if self.rng.random() < 0.5 else "0")
                else:
                    text = " " + " ".join(self.rng.choice(["sea", "moon", "glass", "pale", "wind"]) for _ in range(6))
                ids = [self.rng.randrange(5, 50) for _ in range(self.rng.randrange(1, max_tokens + 1))]
                out.append(Sample(p, [1, 2, 3], ids, [-1.0] * len(ids), text, "stop", self.version))
        return out


class FakeRewards:
    def __init__(self, domains):
        self.domains = {d: build_domain(d) for d in domains}

    def score(self, samples):
        scored = []
        for i in range(0, len(samples), 1):
            s = samples[i]
            scored.append(ScoredSample(s, self.domains[s.prompt.domain].score_group(s.prompt, [s.response_text])[0]))
        return scored, {d: 0.0 for d in self.domains}


class FakeLearner:
    """Records the update plans; reports a fixed entropy of 0.1 per token."""

    world_size = 2

    def __init__(self, rollout):
        self.rollout = rollout
        self.plans, self.coefs = [], []

    def train_step(self, plan, entropy_coefs, kind="rl"):
        self.plans.append(plan)
        self.coefs.append(entropy_coefs)
        per_rank = []
        for shards in plan.shards:
            sums = {}
            for shard in shards:
                for i, d in enumerate(shard.domains):
                    n = float(shard.response_mask[shard.domain_ids == i].sum())
                    if n:
                        sums[d] = {"tokens": n, "entropy_sum": 0.1 * n}
            per_rank.append({"domains": sums})
        return {"domains": merge_learner_sums(per_rank), "grad_norm": 1.0, "optimizer_steps": len(plan.counts)}

    def sync_weights(self, version):
        self.rollout.version = version
        return 0.0

    def save_checkpoint(self, directory, client_state):
        directory.mkdir(parents=True)
        (directory / "fake_learner.json").write_text(json.dumps(client_state))


def test_loop_steps_metrics_versions_and_eval(tmp_path):
    domains = ["math", "creative"]
    rollout = FakeRollout()
    learner = FakeLearner(rollout)
    entropy = DomainEntropyCoefficients({"math": 0.001}, {"creative": AdaptiveEntropyController(target=0.5, step_size=1e-3)})
    parts = RunParts({d: TaskSource(build_domain(d), 0, 4) for d in domains}, rollout, FakeRewards(domains), learner,
                     pad_token_id=0, entropy=entropy, planner=FixedPlanner({"math": 2, "creative": 1}), encode=fake_encode)
    settings = LoopSettings(steps=3, samples_per_prompt=4,
                            max_response_tokens=5, temperature=1.0, advantage="grpo", advantage_params={},
                            dynamic_sampling=False, mini_batches=2, eval_every_steps=2, checkpoint_every_steps=2, seed=0)
    run = RunFolder(tmp_path / "run")
    result = train(settings, parts, run)

    records = run.read_metrics()
    train_records = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train_records] == [1, 2, 3]
    assert [r["step"] for r in evals] == [0, 2, 3]
    # each step's samples came from the policy of the previous update
    assert [r["rollout_policy_version"] for r in train_records] == [0, 1, 2]
    assert result["policy_version"] == 3
    for r in train_records:
        assert set(r["domains"]) == {"math", "creative"}
        assert r["domains"]["math"]["samples"] == 8 and r["domains"]["creative"]["samples"] == 4
        for m in r["domains"].values():
            for key in ("reward_mean", "entropy_mean", "response_length_mean", "samples"):
                assert key in m
        assert {"generate", "score", "update", "sync", "step"} <= set(r["seconds"])
    # two mini-batches, each sharded over the 2 ranks, together holding every sample
    plan = learner.plans[0]
    assert len(plan.counts) == 2 and len(plan.shards) == 2
    advs = torch.cat([s.advantages for shards in plan.shards for s in shards])
    assert len(advs) == 12 and abs(float(advs.sum())) < 1e-4  # zero-mean groups
    # the creative controller sees entropy 0.1 < target 0.5 and raises its alpha step by step
    creative = [float(c[plan.shards[0][0].domains.index("creative")]) for c in learner.coefs]
    assert creative == pytest.approx([0.0, 1e-3, 2e-3])
    assert train_records[2]["domains"]["creative"]["entropy_coef"] == pytest.approx(2e-3)
    assert train_records[0]["domains"]["math"]["entropy_coef"] == pytest.approx(0.001)
    assert result["state"]["entropy_controllers"]["creative"]["alpha"] == pytest.approx(3e-3)
    assert result["state"]["task_cursors"]["math"]["cursor"] >= 6


def _parts(domains=("math", "creative")):
    rollout = FakeRollout()
    entropy = DomainEntropyCoefficients({}, {"creative": AdaptiveEntropyController(target=0.5, step_size=1e-3)})
    return RunParts({d: TaskSource(build_domain(d), 0, 4) for d in domains}, rollout, FakeRewards(domains),
                    FakeLearner(rollout), pad_token_id=0, entropy=entropy, planner=FixedPlanner({"math": 2, "creative": 1}), encode=fake_encode)


def _settings(steps):
    return LoopSettings(steps=steps, samples_per_prompt=4, max_response_tokens=5, temperature=1.0, advantage="grpo",
                        advantage_params={}, dynamic_sampling=False, mini_batches=1, eval_every_steps=0,
                        checkpoint_every_steps=2, seed=0)


def test_resume_continues_without_duplicated_steps(tmp_path):
    from counterpoint.trainer.checkpoint import load_driver_state
    from counterpoint.trainer.loop import train

    straight = RunFolder(tmp_path / "straight")
    train(_settings(4), _parts(), straight)

    run = RunFolder(tmp_path / "resumed")
    train(_settings(2), _parts(), run)  # stops after step 2 with a checkpoint
    run.log_metrics({"kind": "train", "step": 3, "note": "written after the checkpoint, then a crash"})
    state = load_driver_state(run)
    assert state["step"] == 2
    run.truncate_metrics(state["step"])
    parts = _parts()
    result = train(_settings(4), parts, run, resume=state)
    steps = [r["step"] for r in run.read_metrics() if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4]
    assert result["policy_version"] == 4
    # cursors and the adaptive controller carried over: the resumed run saw the same prompts
    # and used the same entropy coefficients as the run that never stopped
    assert result["state"]["task_cursors"] == load_driver_state(straight)["task_cursors"]
    resumed_alpha = result["state"]["entropy_controllers"]["creative"]["alpha"]
    assert resumed_alpha == pytest.approx(load_driver_state(straight)["entropy_controllers"]["creative"]["alpha"])
    assert resumed_alpha == pytest.approx(4e-3)
    assert (run.path / "checkpoint" / "learner" / "fake_learner.json").exists()


def test_live_schedule_drives_the_loop_and_records_versions(tmp_path):
    """The real schedule controller (no Ray) as the planner: versions line up with steps."""
    from counterpoint.services.controller import ScheduleController
    from counterpoint.trainer.curriculum_order import sequential_schedule
    from counterpoint.trainer.loop import train
    from counterpoint.trainer.planning import SchedulePlanner

    run = RunFolder(tmp_path / "sched")
    controller = ScheduleController(run.path, sequential_schedule(["math", "creative"], steps_per_stage=2),
                                    domains=["math", "creative"])
    parts = _parts()
    parts.planner = SchedulePlanner(controller, prompts_per_step=2)
    train(_settings(6), parts, run)
    steps = [r for r in run.read_metrics() if r["kind"] == "train"]
    # two stages of two steps, then the schedule is done and the run stops early
    assert [r["schedule"]["stage"] for r in steps] == ["math", "math", "creative", "creative"]
    assert [set(r["domains"]) for r in steps] == [{"math"}, {"math"}, {"creative"}, {"creative"}]
    reported = controller.metrics()
    assert [m["step"] for m in reported] == [1, 2, 3, 4]
    assert all(m["schedule_version"] == r["schedule"]["version"] for m, r in zip(reported, steps))
    assert all(m["stage"] == r["schedule"]["stage"] for m, r in zip(reported, steps))

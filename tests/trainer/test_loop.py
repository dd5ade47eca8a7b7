"""The RL loop with the in-process fakes of fakes.py (and the real reward functions)."""

import pytest
import torch

from counterpoint.trainer.checkpoint import load_driver_state
from counterpoint.trainer.curriculum.controller import ScheduleController
from counterpoint.trainer.curriculum.plan import StageKind
from counterpoint.trainer.loop import train
from counterpoint.trainer.run_folder import RunFolder

from .fakes import FakeLearnerCrash, fake_config, fake_parts


def test_loop_steps_metrics_versions_and_eval(tmp_path):
    cfg = fake_config(3, eval_every=2, mini_batches=2)
    run = RunFolder(tmp_path / "run")
    parts = fake_parts(cfg, run)
    learner = parts.learner
    result = train(cfg, parts, run)

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
        assert r["update"] == "rl" and r["schedule"]["prompts"] == {"math": 2, "creative": 1}
    assert all(kind is StageKind.RL for kind in learner.kinds)
    # two mini-batches, each sharded over the 2 ranks, together holding every sample
    plan = learner.plans[0]
    assert len(plan.counts) == 2 and len(plan.shards) == 2
    advs = torch.cat([s.advantages for shards in plan.shards for s in shards])
    assert len(advs) == 12 and abs(float(advs.sum())) < 1e-4  # zero-mean groups
    # the creative target comes from the schedule (seeded from the config's adaptive control);
    # its controller sees entropy 0.1 < 0.5 and raises alpha by its configured step each step
    assert train_records[0]["schedule"]["entropy_targets"] == {"creative": 0.5}
    creative = [float(c[plan.shards[0][0].domains.index("creative")]) for c in learner.coefs]
    assert creative == pytest.approx([0.0, 1e-3, 2e-3])
    assert train_records[2]["domains"]["creative"]["entropy_coef"] == pytest.approx(2e-3)
    assert train_records[0]["domains"]["math"]["entropy_coef"] == pytest.approx(0.001)
    assert result["state"]["entropy_controllers"]["controllers"]["creative"]["alpha"] == pytest.approx(3e-3)
    assert result["state"]["task_cursors"]["math"]["cursor"] >= 6


def test_sft_stage_trains_demonstrations_through_the_same_update(tmp_path):
    stages = [
        {"name": "demos", "kind": "sft", "domains": {"creative": {}}, "advance": {"type": "steps", "steps": 1}},
        {"name": "rl", "domains": {"math": {}}, "advance": {"type": "steps", "steps": 1}},
    ]
    cfg = fake_config(2, schedule={"type": "stages", "stages": stages})
    run = RunFolder(tmp_path / "run")
    parts = fake_parts(cfg, run)
    train(cfg, parts, run)
    steps = [r for r in run.read_metrics() if r["kind"] == "train"]
    assert [r["update"] for r in steps] == ["sft", "rl"]
    assert parts.learner.kinds == [StageKind.SFT, StageKind.RL]
    sft_rows = parts.learner.plans[0].shards[0][0]
    assert torch.all(sft_rows.advantages == 1.0)  # demonstrations, laid out like rollouts
    assert "generate" not in steps[0]["seconds"] and "generate" in steps[1]["seconds"]
    assert steps[0]["domains"]["creative"]["samples"] == 3  # one demonstration a prompt, no group


def test_resume_continues_without_duplicated_steps(tmp_path):
    straight = RunFolder(tmp_path / "straight")
    train(fake_config(4), fake_parts(fake_config(4), straight), straight)

    run = RunFolder(tmp_path / "resumed")
    train(fake_config(2), fake_parts(fake_config(2), run), run)  # stops after step 2 with a checkpoint
    run.log_metrics({"kind": "train", "step": 3, "note": "written after the checkpoint, then a crash"})
    state = load_driver_state(run)
    assert state["step"] == 2
    run.truncate_metrics(state["step"])
    result = train(fake_config(4), fake_parts(fake_config(4), run), run, resume=state)
    steps = [r["step"] for r in run.read_metrics() if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4]
    assert result["policy_version"] == 4
    # cursors and the adaptive controller carried over: the resumed run saw the same prompts
    # and used the same entropy coefficients as the run that never stopped
    assert result["state"]["task_cursors"] == load_driver_state(straight)["task_cursors"]
    alpha = result["state"]["entropy_controllers"]["controllers"]["creative"]["alpha"]
    assert alpha == pytest.approx(
        load_driver_state(straight)["entropy_controllers"]["controllers"]["creative"]["alpha"]
    )
    assert alpha == pytest.approx(4e-3)
    assert (run.path / "checkpoint" / "learner" / "fake_learner.json").exists()


CURRICULUM = [
    {"name": "warm", "domains": {"math": {}}, "advance": {"type": "steps", "steps": 2}},
    {
        "name": "joint",
        "domains": {"math": {"weight": 2}, "creative": {}},
        "advance": {"type": "plateau", "domain": "math", "metric": "reward_mean", "window": 2, "min_delta": 0.05},
    },
    {"name": "creative", "domains": {"creative": {}}, "advance": {"type": "steps", "steps": 3}},
]


def _schedule_trace(run: RunFolder) -> list[tuple]:
    return [
        (r["step"], r["schedule"]["stage"], tuple(sorted(r["schedule"]["prompts"].items())))
        for r in run.read_metrics()
        if r["kind"] == "train"
    ]


def test_a_resumed_run_continues_the_checkpointed_schedule(tmp_path):
    """A crash after a checkpoint, with the schedule file already past it (a stage advanced by
    its plateau rule, rule windows moved on): the resumed run rewinds the schedule to the
    checkpoint and plans every later step as the run that never crashed."""
    cfg = fake_config(12, schedule={"type": "stages", "stages": CURRICULUM}, checkpoint_every=5)
    straight = RunFolder(tmp_path / "straight")
    train(cfg, fake_parts(cfg, straight), straight)
    trace = _schedule_trace(straight)
    stages = [stage for _, stage, _ in trace]
    assert stages[:2] == ["warm", "warm"] and "joint" in stages and stages[-1] == "creative"
    advance_step = stages.index("creative")  # the step whose report advanced "joint" (1-based)
    assert advance_step == 6  # the plateau needs more than `window` joint steps; the checkpoint is at 5

    crashed = RunFolder(tmp_path / "crashed")
    crash_step = advance_step + 2  # the first creative step trained, then a crash
    with pytest.raises(FakeLearnerCrash):
        train(cfg, fake_parts(cfg, crashed, crash_at_step=crash_step), crashed)
    state = load_driver_state(crashed)
    assert state["step"] < advance_step  # the checkpoint predates the advance; the file does not
    ahead = ScheduleController(crashed.path).get_schedule()
    assert [p["status"] for p in ahead["progress"]][:2] == ["finished", "finished"]

    crashed.truncate_metrics(state["step"])
    parts = fake_parts(cfg, crashed)
    train(cfg, parts, crashed, resume=state)
    assert _schedule_trace(crashed) == trace
    audit = parts.planner.controller.audit()
    rewinds = [e for e in audit if e["action"] == "rewind"]
    assert len(rewinds) == 1 and rewinds[0]["author"] == "resume"
    assert rewinds[0]["detail"]["step"] == state["step"]


def test_live_schedule_drives_the_loop_and_records_versions(tmp_path):
    """The real schedule controller (no Ray) as the planner: versions line up with steps."""
    cfg = fake_config(6, schedule={"type": "sequential", "order": ["math", "creative"], "steps_per_stage": 2})
    run = RunFolder(tmp_path / "sched")
    parts = fake_parts(cfg, run)
    controller = parts.planner.controller
    train(cfg, parts, run)
    steps = [r for r in run.read_metrics() if r["kind"] == "train"]
    # two stages of two steps, then the schedule is done and the run stops early
    assert [r["schedule"]["stage"] for r in steps] == ["math", "math", "creative", "creative"]
    assert [set(r["domains"]) for r in steps] == [{"math"}, {"math"}, {"creative"}, {"creative"}]
    reported = controller.metrics()
    assert [m["step"] for m in reported] == [1, 2, 3, 4]
    assert all(m["schedule_version"] == r["schedule"]["version"] for m, r in zip(reported, steps))
    assert all(m["stage"] == r["schedule"]["stage"] for m, r in zip(reported, steps))

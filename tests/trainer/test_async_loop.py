"""Asynchronous rollouts (`generation.max_staleness` > 0) with the in-process fakes: version
tagging, the staleness bound, the correction's inputs, checkpoints and resume, and schedule
changes (a reweight, a stage advance, a pause) arriving while a rollout is on its way.

The fakes' engine is serial like the Ray actor (a generate call and a weight push never
interleave), and the fake learner's update waits until the next step's rollout has started
when the test expects one to run beside it, so which policy version each step samples is
deterministic rather than a race.
"""

import threading

import pytest
import torch

from counterpoint.trainer.checkpoint import load_driver_state
from counterpoint.trainer.loop import train
from counterpoint.trainer.run_folder import RunFolder

from .fakes import FakeLearner, FakeLearnerCrash, FakeRollout, fake_config, fake_parts


class SerialFakeRollout(FakeRollout):
    """FakeRollout behind a lock (one call at a time, as a Ray actor runs them), counting the
    training calls it has begun."""

    def __init__(self, lag_versions_by: int = 0):
        super().__init__()
        self.lock = threading.Lock()
        self.started = threading.Condition()
        self.train_calls = 0
        self.lag_versions_by = lag_versions_by
        """A faulty engine: tags its samples this many versions older than it holds."""

    def generate(self, prompts, **kwargs):
        with self.lock:
            if any("/train/" in p.prompt_id for p in prompts):
                with self.started:
                    self.train_calls += 1
                    self.started.notify_all()
            samples = super().generate(prompts, **kwargs)
            if self.lag_versions_by:
                for s in samples:
                    s.policy_version = max(0, s.policy_version - self.lag_versions_by)
            return samples

    def push(self, version):
        with self.lock:
            self.version = version


class OverlappingFakeLearner(FakeLearner):
    """Each update of a step in `overlapped` waits until the next step's rollout has started
    (as a real update runs beside it); `during` runs inside the update of the steps it names."""

    def __init__(self, rollout, overlapped, during=None, **kwargs):
        super().__init__(rollout, **kwargs)
        self.overlapped = set(overlapped)
        self.during = during or {}
        self.lags = []

    def train_step(self, plan, entropy_coefs, kind, measure_rank=False):
        step = len(self.plans) + 1
        if step in self.overlapped:
            with self.rollout.started:
                assert self.rollout.started.wait_for(lambda: self.rollout.train_calls >= step + 1, timeout=10)
        if step in self.during:
            self.during[step]()
        self.lags.append(torch.cat([s.lag for shards in plan.shards for s in shards]))
        return super().train_step(plan, entropy_coefs, kind, measure_rank)

    def sync_weights(self, version):
        self.rollout.push(version)
        return 0.0


def async_parts(cfg, run, overlapped, *, during=None, crash_at_step=None, lag_versions_by=0):
    parts = fake_parts(cfg, run)
    rollout = SerialFakeRollout(lag_versions_by)
    parts.rollout = rollout
    parts.learner = OverlappingFakeLearner(rollout, overlapped, during=during, crash_at_step=crash_at_step)
    return parts


def _train_records(run):
    return [r for r in run.read_metrics() if r["kind"] == "train"]


def test_rollouts_made_ahead_are_tagged_one_version_behind_and_drained_at_checkpoints(tmp_path):
    cfg = fake_config(6, checkpoint_every=3, generation={"max_staleness": 1})
    run = RunFolder(tmp_path / "run")
    # step 1 is made before anything trains; step 3 checkpoints, so step 4 is not made ahead;
    # step 6 is the last
    parts = async_parts(cfg, run, overlapped=[1, 2, 4, 5])
    result = train(cfg, parts, run)
    records = _train_records(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    # each step made during the previous update sampled the weights before it
    assert [r["rollout_policy_version"] for r in records] == [0, 0, 1, 3, 3, 4]
    lags = [max(m["policy_lag_max"] for m in r["domains"].values()) for r in records]
    assert lags == [0, 1, 1, 0, 1, 1]
    assert all(m["policy_lag_mean"] == lag for r, lag in zip(records, lags) for m in r["domains"].values())
    # the learner saw the same lag on every row of those batches
    assert [set(t.tolist()) for t in parts.learner.lags] == [{0.0}, {1.0}, {1.0}, {0.0}, {1.0}, {1.0}]
    assert result["policy_version"] == 6
    # the step time of a step made ahead counts its wait, not the generation it overlapped
    assert all("wait" in r["seconds"] for r in records[1:3])
    assert "wait" not in records[0]["seconds"]


def test_an_on_policy_run_is_exactly_on_policy(tmp_path):
    cfg = fake_config(3, generation={"max_staleness": 0})
    run = RunFolder(tmp_path / "run")
    parts = async_parts(cfg, run, overlapped=[])
    train(cfg, parts, run)
    records = _train_records(run)
    assert [r["rollout_policy_version"] for r in records] == [0, 1, 2]
    assert all(float(t.abs().max()) == 0.0 for t in parts.learner.lags)
    assert all(m["policy_lag_max"] == 0 for r in records for m in r["domains"].values())


def test_a_sample_past_the_staleness_bound_stops_the_step_before_its_update(tmp_path):
    cfg = fake_config(3, checkpoint_every=0, generation={"max_staleness": 1})
    run = RunFolder(tmp_path / "run")
    parts = async_parts(cfg, run, overlapped=[1, 2], lag_versions_by=1)  # a faulty engine: one more behind
    with pytest.raises(RuntimeError, match=r"step 3: a sample is 2 updates behind the learner, past generation.max"):
        train(cfg, parts, run)
    assert len(parts.learner.plans) == 2  # step 3 never reached the update


def test_draws_no_prompt_past_the_end_and_a_resumed_run_replays_the_same_steps(tmp_path):
    cfg = fake_config(6, checkpoint_every=3, generation={"max_staleness": 1})
    on_policy = fake_config(6, checkpoint_every=3)
    straight = RunFolder(tmp_path / "straight")
    train(cfg, async_parts(cfg, straight, overlapped=[1, 2, 4, 5]), straight)
    reference = RunFolder(tmp_path / "on-policy")
    train(on_policy, fake_parts(on_policy, reference), reference)
    # as many prompts drawn as the on-policy run's: nothing was launched past the last step
    assert load_driver_state(straight)["task_cursors"] == load_driver_state(reference)["task_cursors"]

    crashed = RunFolder(tmp_path / "crashed")
    with pytest.raises(FakeLearnerCrash):
        train(cfg, async_parts(cfg, crashed, overlapped=[1, 2, 4], crash_at_step=5), crashed)
    state = load_driver_state(crashed)
    assert state["step"] == 3
    crashed.truncate_metrics(state["step"])
    train(cfg, async_parts(cfg, crashed, overlapped=[4, 5]), crashed, resume=state)

    def trace(run):
        return [
            (r["step"], r["rollout_policy_version"], {d: m["reward_mean"] for d, m in r["domains"].items()})
            for r in _train_records(run)
        ]

    assert trace(crashed) == trace(straight)


def test_a_reweight_while_a_rollout_is_on_its_way_reaches_the_next_launched_step(tmp_path):
    cfg = fake_config(4, checkpoint_every=0, generation={"max_staleness": 1})
    run = RunFolder(tmp_path / "run")
    parts = fake_parts(cfg, run)  # (for its controller)
    controller = parts.planner.controller
    stage = controller.get_schedule()["stages"][0]["name"]

    def reweight():  # during update 2: step 3's rollout is already generating
        controller.set_domain(stage, "creative", weight=10.0, author="operator", reason="more creative")

    parts = async_parts(cfg, run, overlapped=[1, 2, 3], during={2: reweight})
    parts.planner.controller = controller
    train(cfg, parts, run)
    records = _train_records(run)
    versions = [r["schedule"]["version"] for r in records]
    prompts = [r["schedule"]["prompts"] for r in records]
    # step 3 trains what it was launched with (the old version and split), step 4 the new
    assert versions[2] == versions[0] and versions[3] == versions[0] + 1
    assert prompts[2] == prompts[0] == {"math": 2, "creative": 1}
    assert prompts[3] == controller.preview_plan(4, 3).prompts_per_domain != prompts[2]
    # what the controller says each step applied is what the step's record says
    reported = {m["step"]: m["schedule_version"] for m in controller.metrics()}
    assert [reported[r["step"]] for r in records] == versions
    assert not [e for e in run.read_events() if e["event"] == "rollout_discarded"]


STAGES = [
    {"name": "structured", "domains": {"math": {}}, "advance": {"type": "steps", "steps": 2}},
    {"name": "open", "domains": {"creative": {}}, "advance": {"type": "steps", "steps": 2}},
]


def test_a_stage_advance_drops_the_rollout_launched_for_the_old_stage(tmp_path):
    cfg = fake_config(
        4, checkpoint_every=0, schedule={"type": "stages", "stages": STAGES}, generation={"max_staleness": 1}
    )
    run = RunFolder(tmp_path / "run")
    parts = async_parts(cfg, run, overlapped=[1, 2, 3])
    train(cfg, parts, run)
    records = _train_records(run)
    # each stage trains exactly its steps, though step 3 was launched before step 2's report
    # advanced the schedule
    assert [r["schedule"]["stage"] for r in records] == ["structured", "structured", "open", "open"]
    assert [set(r["domains"]) for r in records] == [{"math"}, {"math"}, {"creative"}, {"creative"}]
    dropped = [e for e in run.read_events() if e["event"] == "rollout_discarded"]
    assert [e["step"] for e in dropped] == [3]
    assert "structured" in dropped[0]["reason"] and "open" in dropped[0]["reason"]
    # the step planned again at its boundary sampled the newest weights
    assert records[2]["rollout_policy_version"] == 2


def test_a_pause_while_a_rollout_is_on_its_way_holds_the_next_step_until_resumed(tmp_path):
    cfg = fake_config(3, checkpoint_every=0, generation={"max_staleness": 1})
    run = RunFolder(tmp_path / "run")
    parts = fake_parts(cfg, run)
    controller = parts.planner.controller
    resumed = threading.Event()

    def pause():  # during update 1: step 2's rollout is generating
        controller.pause(author="operator", reason="look")

        def later():
            resumed.set()
            controller.resume(author="operator")

        threading.Timer(0.3, later).start()

    parts = async_parts(cfg, run, overlapped=[1, 2], during={1: pause})
    parts.planner.controller, parts.planner.poll_seconds = controller, 0.05
    parts.planner.on_event = run.event
    train(cfg, parts, run)
    assert resumed.is_set()
    records = _train_records(run)
    assert [r["step"] for r in records] == [1, 2, 3]
    events = [e["event"] for e in run.read_events()]
    assert "schedule_paused" in events and "schedule_resumed" in events and "rollout_discarded" in events
    # step 2 was planned again after the pause, on the version the resume made
    assert records[1]["schedule"]["version"] == controller.get_schedule()["version"]

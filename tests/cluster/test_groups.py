"""The Ray actor groups (cluster/groups.py) on a small real Ray cluster with fake actor bodies
(tests/fakes.py): recovery of a killed or restarted rollout engine, routing of prompt groups to
their domain's reward pool and recovery of a crashed or hung reward actor, the learner ranks'
master address, weight sync and a dying rank. No vLLM or DeepSpeed: seconds per test.

The fakes are wrapped with `ray.remote` and the restart options the launcher gives the real
actors (`RESTARTABLE`); faults are armed through flag files (`tests.fakes.arm`)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import ray
import torch

import tests.fakes
from counterpoint.cluster import groups
from counterpoint.cluster.errors import LearnerFailure
from counterpoint.cluster.groups import RESTARTABLE, RayLearnerGroup, RayRewards, RayRollout
from counterpoint.rollout.records import Prompt
from counterpoint.trainer.batch import UpdatePlan
from counterpoint.trainer.curriculum.plan import StageKind
from tests.fakes import FakeEngine, FakeLearnerRank, FakeRewardWorker, arm, started, wait_for_file

pytestmark = pytest.mark.timeout(120)  # a hang is a failure here, never a stuck suite

EngineActor = ray.remote(FakeEngine)
RewardWorkerActor = ray.remote(FakeRewardWorker)
LearnerRankActor = ray.remote(FakeLearnerRank)


@pytest.fixture(scope="module")
def ray_local():
    """One small embedded cluster for the module: loopback only, auth disabled (as
    cluster/runtime.py starts it), 2 logical CPUs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        # The workers get the fakes by value: they need not import this test tree.
        ray.cloudpickle.register_pickle_by_value(tests.fakes)
        ray.init(
            address="local",
            num_cpus=2,
            num_gpus=0,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            object_store_memory=100 * 2**20,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
        )
        try:
            yield
        finally:
            ray.shutdown()
            ray.cloudpickle.unregister_pickle_by_value(tests.fakes)


@pytest.fixture
def spawn(ray_local):
    """Create actors for one test (restartable, no CPU reserved); all are killed at its end."""
    created = []

    def make(actor_cls, *args, restartable: bool = True, **kwargs):
        options = {"num_cpus": 0, **(RESTARTABLE if restartable else {})}
        handle = actor_cls.options(**options).remote(*args, **kwargs)
        created.append(handle)
        return handle

    yield make
    for handle in created:
        ray.kill(handle, no_restart=True)


@pytest.fixture
def events():
    """A recording `on_event` callback; the list of (kind, fields) is `events.seen`."""

    class Recorder:
        def __init__(self):
            self.seen = []

        def __call__(self, kind, **fields):
            self.seen.append((kind, fields))

        def kinds(self):
            return [k for k, _ in self.seen]

    return Recorder()


def prompts(n: int, domains=("math", "code", "creative")) -> list[Prompt]:
    return [
        Prompt(domains[i % len(domains)], f"{domains[i % len(domains)]}/train/{i}", f"prompt {i}") for i in range(n)
    ]


def wait_restarted(actor, old_pid: int, timeout_s: float = 60.0) -> dict:
    """Block until Ray has brought `actor` back in a new process; its fresh state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = ray.get(actor.state.remote(), timeout=10)
            if state["pid"] != old_pid:
                return state
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError("the actor was not restarted")


def kill_when_started(flag: Path, actor) -> threading.Thread:
    """In the background: once the armed call is running (its `started` file), kill the actor
    the way a crash would, leaving Ray to restart it."""

    def run():
        wait_for_file(flag)
        ray.kill(actor, no_restart=False)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def bounded(call, timeout_s: float = 20.0):
    """Run `call()` in a thread: ("returned", value), ("raised", error) or ("hung", None) after
    `timeout_s` (the thread is left behind; the test's actors are killed at its end, which frees it)."""
    outcome = ["hung", None]

    def run():
        try:
            outcome[:] = ["returned", call()]
        except Exception as err:
            outcome[:] = ["raised", err]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return tuple(outcome)


def expected_order(ps: list[Prompt], samples_per_prompt: int) -> list[tuple[str, int]]:
    return [(p.prompt_id, k) for p in ps for k in range(samples_per_prompt)]


def order_of(samples) -> list[tuple[str, int]]:
    return [(s.prompt.prompt_id, int(s.response_text.split("|")[3])) for s in samples]


# --- rollout ---


def test_rollout_splits_prompts_over_engines_in_order(spawn, events):
    engines = [spawn(EngineActor, f"rollout-{i}") for i in range(2)]
    rollout = RayRollout(engines, on_event=events)
    ps = prompts(5)
    samples = rollout.generate(ps, samples_per_prompt=2, max_tokens=3, temperature=1.0)
    assert order_of(samples) == expected_order(ps, 2)
    # contiguous chunks: 3 prompts to the first engine, 2 to the second
    assert [s.response_text.split("|")[0] for s in samples] == ["rollout-0"] * 6 + ["rollout-1"] * 4
    assert all(s.response_token_ids == [11, 12, 13] and s.policy_version == 0 for s in samples)
    assert events.seen == []
    # fewer prompts than engines: the idle engine gets no call
    assert order_of(rollout.generate(ps[:1], samples_per_prompt=1, max_tokens=1, temperature=0.0)) == [
        (ps[0].prompt_id, 0)
    ]
    assert ray.get(engines[1].state.remote())["generate_calls"] == 1


def test_rollout_reissues_the_chunk_of_an_engine_killed_mid_call(spawn, events, tmp_path):
    engines = [spawn(EngineActor, f"rollout-{i}", str(tmp_path)) for i in range(2)]
    rollout = RayRollout(engines, on_event=events)
    assert rollout.load_weights(ray.put({"tag": "w3"}), 3) >= 0
    before = ray.get(engines[0].state.remote())
    arm(tmp_path, "rollout-0", "generate", "hang")
    killer = kill_when_started(started(tmp_path, "rollout-0", "generate"), engines[0])

    ps = prompts(6)
    samples = rollout.generate(ps, samples_per_prompt=3, max_tokens=4, temperature=1.0)
    killer.join(timeout=5)

    assert order_of(samples) == expected_order(ps, 3)  # every prompt, each sample exactly once, in order
    # the restarted engine was given the current weights before its chunk was generated again
    assert {(s.policy_version, s.response_text.split("|")[1]) for s in samples} == {(3, "w3")}
    after = ray.get(engines[0].state.remote())
    assert after["pid"] != before["pid"] and after["generate_calls"] == 1
    kinds = events.kinds()
    assert kinds == ["actor_recovered"], events.seen
    assert events.seen[0][1]["actor"] == "rollout-0" and events.seen[0][1]["attempt"] == 1


def test_a_hung_engine_is_killed_restarted_given_the_weights_and_asked_again(spawn, events, tmp_path):
    engines = [spawn(EngineActor, f"rollout-{i}", str(tmp_path)) for i in range(2)]
    rollout = RayRollout(engines, on_event=events, generate_timeout_s=2.0, weights_timeout_s=30.0)
    rollout.load_weights(ray.put({"tag": "w4"}), 4)
    pid = ray.get(engines[1].state.remote())["pid"]
    arm(tmp_path, "rollout-1", "generate", "hang")  # stands for a SIGSTOPped or deadlocked engine
    ps = prompts(4)
    started_at = time.monotonic()
    samples = rollout.generate(ps, samples_per_prompt=2, max_tokens=4, temperature=1.0)
    assert time.monotonic() - started_at < 60
    assert order_of(samples) == expected_order(ps, 2)
    assert {(s.policy_version, s.response_text.split("|")[1]) for s in samples} == {(4, "w4")}
    assert events.seen[:2] == [
        ("actor_hung", {"actor": "rollout-1", "seconds": 2.0}),
        ("actor_recovered", {"actor": "rollout-1", "attempt": 1, "error": "GetTimeoutError"}),
    ]
    assert ray.get(engines[1].state.remote())["pid"] != pid


def test_rollout_reloads_an_engine_that_came_back_with_base_weights(spawn, events):
    engines = [spawn(EngineActor, f"rollout-{i}") for i in range(2)]
    rollout = RayRollout(engines, on_event=events)
    rollout.load_weights(ray.put({"tag": "w5"}), 5)
    pid = ray.get(engines[0].state.remote())["pid"]
    ray.kill(engines[0], no_restart=False)  # between calls: the next call finds a healthy, stale engine
    assert wait_restarted(engines[0], pid)["version"] == 0  # base weights, as the constructor loads them

    ps = prompts(4)
    samples = rollout.generate(ps, samples_per_prompt=2, max_tokens=2, temperature=1.0)

    assert order_of(samples) == expected_order(ps, 2)
    assert {(s.policy_version, s.response_text.split("|")[1]) for s in samples} == {(5, "w5")}
    assert events.seen == [("engine_reloaded", {"actor": "rollout-0", "stale_version": 0, "version": 5})]
    stale, fresh = ray.get([e.state.remote() for e in engines])
    assert (stale["version"], stale["generate_calls"]) == (5, 2)  # one stale generation, thrown away
    assert (fresh["version"], fresh["generate_calls"]) == (5, 1)


def test_load_weights_recovers_an_engine_that_dies_loading_them(spawn, events, tmp_path):
    engines = [spawn(EngineActor, f"rollout-{i}", str(tmp_path)) for i in range(2)]
    rollout = RayRollout(engines, on_event=events)
    arm(tmp_path, "rollout-1", "update_weights", "exit")
    rollout.load_weights(ray.put({"tag": "w2"}), 2)
    assert [ray.get(e.state.remote())["version"] for e in engines] == [2, 2]
    assert events.kinds() == ["actor_recovered"] and events.seen[0][1]["actor"] == "rollout-1"


def test_an_engine_dying_mid_rollout_while_new_weights_are_pushed_recovers_both(spawn, events, tmp_path):
    """Asynchronous rollouts: the pipeline's thread generates while the loop pushes the next
    weights. An engine killed mid-generation is restarted, given the newest weights and asked
    again; the push it missed is reissued; the other engine's samples of the version the call
    began with are kept (not taken for a restarted engine's and generated again)."""
    engines = [spawn(EngineActor, f"rollout-{i}", str(tmp_path)) for i in range(2)]
    rollout = RayRollout(engines, on_event=events)
    rollout.load_weights(ray.put({"tag": "w3"}), 3)
    arm(tmp_path, "rollout-0", "generate", "hang")
    ps = prompts(6)
    generated = {}
    generating = threading.Thread(
        target=lambda: generated.update(out=rollout.generate(ps, samples_per_prompt=2, max_tokens=2, temperature=1.0)),
        daemon=True,
    )
    generating.start()
    wait_for_file(started(tmp_path, "rollout-0", "generate"))
    pushed = {}
    pushing = threading.Thread(target=lambda: pushed.update(s=rollout.load_weights(ray.put({"tag": "w4"}), 4)))
    pushing.start()
    deadline = time.monotonic() + 20
    while ray.get(engines[1].state.remote())["version"] != 4:  # the healthy engine took the push
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ray.kill(engines[0], no_restart=False)  # the hung engine dies with the push queued behind it
    generating.join(timeout=60)
    pushing.join(timeout=60)
    assert "out" in generated and "s" in pushed
    samples = generated["out"]
    assert order_of(samples) == expected_order(ps, 2)
    by_engine = {(s.response_text.split("|")[0], s.policy_version, s.response_text.split("|")[1]) for s in samples}
    assert by_engine == {("rollout-0", 4, "w4"), ("rollout-1", 3, "w3")}
    assert [ray.get(e.state.remote())["version"] for e in engines] == [4, 4]
    assert ray.get(engines[1].state.remote())["generate_calls"] == 1  # nothing thrown away
    assert "engine_reloaded" not in events.kinds()
    assert events.kinds().count("actor_recovered") >= 1


def test_an_engine_past_its_restart_budget_fails_the_call_without_hanging(spawn, events, tmp_path):
    engine = spawn(EngineActor, "rollout-0", str(tmp_path), restartable=False)  # max_restarts 0: spent
    rollout = RayRollout([engine], on_event=events)
    arm(tmp_path, "rollout-0", "generate", "hang")
    kill_when_started(started(tmp_path, "rollout-0", "generate"), engine)
    kind, result = bounded(lambda: rollout.generate(prompts(2), samples_per_prompt=1, max_tokens=1, temperature=1.0))
    assert kind == "raised" and isinstance(result, ray.exceptions.RayActorError), (kind, result)


# --- rewards ---


def scored_pools(spawn, sizes: dict[str, int], flags_dir=None) -> dict[str, list]:
    return {d: [spawn(RewardWorkerActor, d, f"reward-{d}-{w}", flags_dir) for w in range(n)] for d, n in sizes.items()}


def rollout_samples(ps: list[Prompt], samples_per_prompt: int = 2):
    return FakeEngine("rollout-0").generate(ps, samples_per_prompt=samples_per_prompt, max_tokens=2, temperature=1.0)


def test_rewards_route_each_group_to_its_domains_pool_in_input_order(spawn, events):
    rewards = RayRewards(scored_pools(spawn, {"math": 2, "code": 1, "creative": 1}), on_event=events)
    samples = rollout_samples(prompts(7))
    samples = samples[1::2] + samples[::2]  # a prompt's samples need not be adjacent
    scored, seconds, *_ = rewards.score(samples)

    assert [x.sample for x in scored] == samples
    for x in scored:
        assert x.score.info["domain"] == x.domain == x.sample.prompt.domain
        assert x.score.info["prompt_id"] == x.sample.prompt.prompt_id
        assert x.score.info["response"] == x.sample.response_text
        assert x.score.reward == len(x.sample.response_text)
    workers = {d: {x.score.info["worker"] for x in scored if x.domain == d} for d in ("math", "code", "creative")}
    assert workers == {
        "math": {"reward-math-0", "reward-math-1"},
        "code": {"reward-code-0"},
        "creative": {"reward-creative-0"},
    }
    assert set(seconds) == {"math", "code", "creative"} and all(s > 0 for s in seconds.values())
    assert events.seen == []


def test_rewards_refuse_a_domain_without_a_pool(spawn):
    rewards = RayRewards(scored_pools(spawn, {"math": 1}))
    with pytest.raises(KeyError, match="creative"):
        rewards.score(rollout_samples(prompts(2, domains=("math", "creative"))))


def test_a_crashed_reward_actor_is_replaced_and_its_groups_scored_again(spawn, events, tmp_path):
    rewards = RayRewards(scored_pools(spawn, {"math": 1, "code": 2}, str(tmp_path)), on_event=events)
    arm(tmp_path, "reward-code-1", "score", "exit")
    samples = rollout_samples(prompts(8, domains=("math", "code")), 3)
    scored, *_ = rewards.score(samples)
    assert [x.sample for x in scored] == samples
    assert all(x.score.info["prompt_id"] == x.sample.prompt.prompt_id for x in scored)
    assert events.kinds() == ["actor_recovered"] and events.seen[0][1]["actor"] == "reward-code-1"


def test_a_hung_reward_actor_is_killed_replaced_and_its_groups_scored_again(spawn, events, tmp_path):
    pools = scored_pools(spawn, {"creative": 1}, str(tmp_path))
    rewards = RayRewards(pools, on_event=events, timeout_s=2.0)
    pid = ray.get(pools["creative"][0].state.remote())["pid"]
    arm(tmp_path, "reward-creative-0", "score", "hang")
    samples = rollout_samples(prompts(3, domains=("creative",)))
    started_at = time.monotonic()
    scored, *_ = rewards.score(samples)
    assert time.monotonic() - started_at < 60
    assert [x.sample for x in scored] == samples and all(x.score.info["domain"] == "creative" for x in scored)
    assert events.seen[:2] == [
        ("actor_hung", {"actor": "reward-creative-0", "seconds": 2.0}),
        ("actor_recovered", {"actor": "reward-creative-0", "attempt": 1, "error": "GetTimeoutError"}),
    ]
    assert ray.get(pools["creative"][0].state.remote())["pid"] != pid


# --- learner ---


def plan_for(world_size: int, minis: int = 2) -> UpdatePlan:
    shards = [[f"rank{r}-mini{k}" for k in range(minis)] for r in range(world_size)]
    return UpdatePlan(shards, [(torch.ones(1), torch.ones(1)) for _ in range(minis)])


def test_learner_group_rank0_gives_the_master_and_weights_reach_the_engines(spawn, events, monkeypatch, tmp_path):
    # RayLearnerGroup.create builds groups.LearnerActor itself: swap in the fake body there.
    monkeypatch.setattr(groups, "LearnerActor", LearnerRankActor)
    engines = [spawn(EngineActor, f"rollout-{i}") for i in range(2)]
    rollout = RayRollout(engines, on_event=events)
    learner, infos = RayLearnerGroup.create(
        2, rollout, loopback=True, name_prefix=f"test-{os.getpid()}", flags_dir=str(tmp_path), extra="kw"
    )
    try:
        assert [i["rank"] for i in infos] == [0, 1] and learner.world_size == 2
        states = ray.get([r.state.remote() for r in learner.ranks])
        assert [s["rank"] for s in states] == [0, 1]
        host, port = states[0]["master"]
        assert host == "127.0.0.1" and port > 0 and states[1]["master"] == (host, port)
        assert states[1]["kwargs"] == {"extra": "kw"}

        result = learner.train_step(plan_for(2), torch.zeros(1), StageKind.RL)
        assert result["grad_norm"] == 0.5 and result["optimizer_steps"] == 2  # rank 0's
        assert result["domains"]["math"]["tokens"] == 20  # summed over both ranks
        assert result["domains"]["math"]["logprob_mismatch_max"] == pytest.approx(0.1)
        assert [s["shards"] for s in ray.get([r.state.remote() for r in learner.ranks])] == [
            [["rank0-mini0", "rank0-mini1"]],
            [["rank1-mini0", "rank1-mini1"]],
        ]

        learner.sync_weights(1)  # rank 0's dict, by reference, to every engine
        samples = rollout.generate(prompts(3), samples_per_prompt=1, max_tokens=1, temperature=1.0)
        assert {(s.policy_version, s.response_text.split("|")[1]) for s in samples} == {(1, "step-1")}

        learner.save_checkpoint(tmp_path / "ckpt", {"step": 1})
        assert learner.load_checkpoint(tmp_path / "ckpt") == {"step": 1}
        assert learner.weights_digest() == "digest-1"
        assert events.seen == []
    finally:
        for rank in learner.ranks:
            ray.kill(rank, no_restart=True)


def test_a_learner_rank_that_dies_mid_step_fails_it_as_learner_failure(spawn, tmp_path):
    ranks = [spawn(LearnerRankActor, r, 2, flags_dir=str(tmp_path), restartable=False) for r in range(2)]
    learner = RayLearnerGroup(ranks, rollout=None)
    arm(tmp_path, "learner-0", "train_step", "hang")  # blocked in the collective its dead peer left
    arm(tmp_path, "learner-1", "train_step", "exit")
    started_at = time.monotonic()
    with pytest.raises(LearnerFailure, match="a learner rank died"):
        learner.train_step(plan_for(2), torch.zeros(1), StageKind.RL)
    assert time.monotonic() - started_at < 30
    for rank in ranks:  # the survivor held a broken process group: it is gone too
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(rank.state.remote(), timeout=30)


def test_a_hung_learner_rank_fails_the_step_as_learner_failure(spawn, events, tmp_path):
    ranks = [spawn(LearnerRankActor, r, 2, flags_dir=str(tmp_path), restartable=False) for r in range(2)]
    learner = RayLearnerGroup(ranks, rollout=None, timeout_s=2.0, on_event=events)
    arm(tmp_path, "learner-0", "train_step", "hang")  # waits in the collective for its peer
    arm(tmp_path, "learner-1", "train_step", "hang")  # stands for a SIGSTOPped rank
    started_at = time.monotonic()
    with pytest.raises(LearnerFailure, match="no answer within 2 s"):
        learner.train_step(plan_for(2), torch.zeros(1), StageKind.RL)
    assert time.monotonic() - started_at < 30
    assert events.seen == [("actor_hung", {"actor": "learner", "seconds": 2.0, "waiting_for": 2})]
    for rank in ranks:  # both are killed: the launcher restarts the group from its checkpoint
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(rank.state.remote(), timeout=30)


def test_a_learner_rank_that_dies_in_sync_fails_it_as_learner_failure(spawn, tmp_path):
    ranks = [spawn(LearnerRankActor, r, 2, flags_dir=str(tmp_path), restartable=False) for r in range(2)]
    learner = RayLearnerGroup(ranks, rollout=None)
    arm(tmp_path, "learner-1", "export_weights", "exit")
    with pytest.raises(LearnerFailure):
        learner.sync_weights(1)


def test_a_learner_rank_that_raises_mid_step_fails_it_as_learner_failure(spawn, tmp_path):
    ranks = [spawn(LearnerRankActor, r, 2, flags_dir=str(tmp_path), restartable=False) for r in range(2)]
    learner = RayLearnerGroup(ranks, rollout=None)
    arm(tmp_path, "learner-0", "train_step", "hang")  # blocked in the collective its failed peer left
    arm(tmp_path, "learner-1", "train_step", "raise")
    kind, result = bounded(lambda: learner.train_step(plan_for(2), torch.zeros(1), StageKind.RL))
    assert kind == "raised" and isinstance(result, LearnerFailure), (kind, result)
    with pytest.raises(ray.exceptions.RayActorError):  # the blocked survivor is gone too
        ray.get(ranks[0].state.remote(), timeout=30)


def test_rank0_dying_in_sync_is_a_learner_failure_not_an_engine_recovery(spawn, events, tmp_path):
    ranks = [spawn(LearnerRankActor, r, 2, flags_dir=str(tmp_path), restartable=False) for r in range(2)]
    engines = [spawn(EngineActor, "rollout-0")]
    learner = RayLearnerGroup(ranks, RayRollout(engines, on_event=events))
    arm(tmp_path, "learner-0", "export_weights", "exit")
    arm(tmp_path, "learner-1", "export_weights", "hang")  # in the ZeRO-3 gather its dead peer left
    kind, result = bounded(lambda: learner.sync_weights(1), timeout_s=10)
    assert kind == "raised" and isinstance(result, LearnerFailure), (kind, result)
    assert events.seen == []  # the engine is healthy: nothing to recover
    assert ray.get(engines[0].state.remote())["version"] == 0

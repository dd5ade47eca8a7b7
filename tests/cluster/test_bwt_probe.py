"""schedule.policy: bwt on the real actors: transfer probes with DeepSpeed checkpoints as
snapshots, then the run trains in the order they chose, from the restored base weights."""

import json

import pytest

from counterpoint.config import load_config
from counterpoint.trainer.run_folder import RunFolder

from .helpers import SMOKE, informative, small_overrides

pytestmark = pytest.mark.integration


def test_bwt_policy_probes_then_trains_in_the_chosen_order(tmp_path, model_cache):
    from counterpoint.cluster.launch import run_training
    from counterpoint.trainer.curriculum.controller import ScheduleController

    cfg = load_config(
        SMOKE,
        overrides=small_overrides(
            tmp_path,
            model_cache,
            "learner.learning_rate=0.01",
            "schedule.policy=bwt",
            "schedule.policy.order=[math, creative]",
            "schedule.policy.probe_steps=1",
            "schedule.policy.steps_per_stage=1",
        ),
    )
    run = RunFolder(tmp_path / "runs" / "bwt")
    run_training(cfg, run)

    transfer = json.loads((run.path / "transfer.json").read_text())
    assert set(transfer["after_pair"]) == {"math", "creative"}
    assert transfer["after_pair"]["math"].keys() == {"creative"} and transfer["after_pair"]["creative"].keys() == {
        "math"
    }
    for i, j in (("math", "creative"), ("creative", "math")):
        assert transfer["transfer"][i][j] == pytest.approx(transfer["after_pair"][i][j] - transfer["after_own"][i])
    order = transfer["order"]
    assert sorted(order) == ["creative", "math"] and next(iter(transfer["predicted"])) == ">".join(order)

    probes = [json.loads(line) for line in (run.path / "probes.jsonl").read_text().splitlines()]
    assert [r["probe_stage"] for r in probes if r["kind"] == "probe"] == [
        "math",
        "math>creative",
        "creative",
        "creative>math",
    ]
    assert len([r for r in probes if r["kind"] == "probe_eval"]) == 6
    trained = [r for r in probes if r["kind"] == "probe"]
    assert all((r["grad_norm"] > 0) == informative(r) for r in trained) and any(informative(r) for r in trained)
    assert not (run.path / "probes").exists()  # the snapshots are gone

    # the schedule's first version is the probes' order, and the run followed it
    controller = ScheduleController(run.path)
    first = controller.audit()[0]
    assert first["version"] == 1 and first["author"] == "bwt-probe" and " > ".join(order) in first["reason"]
    steps = [r for r in run.read_metrics() if r["kind"] == "train"]
    assert [r["schedule"]["stage"] for r in steps] == order
    assert [set(r["domains"]) for r in steps] == [{order[0]}, {order[1]}]
    assert [r["rollout_policy_version"] for r in steps] == [0, 1]
    # the engines were given the restored base weights before step 1: the learner (at the base,
    # checked by weights digest) and the engine agree on the step's samples. With an engine
    # still holding probe weights (lr 0.01) they would differ by far more.
    assert max(m["logprob_mismatch_max"] for m in steps[0]["domains"].values()) < 1e-3
    events = [json.loads(line)["event"] for line in (run.path / "events.jsonl").read_text().splitlines()]
    assert events.index("probe_start") < events.index("probe_end") < events.index("eval")

"""A learner rank dies mid-run: the step fails cleanly and the run continues from its last
checkpoint, with nothing duplicated."""

import json
import threading
import time

import pytest

from .helpers import SMOKE, small_overrides

pytestmark = pytest.mark.integration


def test_learner_rank_failure_restarts_from_checkpoint(tmp_path, model_cache):
    import ray

    from counterpoint.cluster.launch import run_training
    from counterpoint.config import load_config
    from counterpoint.trainer.run_folder import RunFolder

    cfg = load_config(
        SMOKE, overrides=small_overrides(tmp_path, model_cache, "run.steps=4", "run.checkpoint_every_steps=2")
    )
    run = RunFolder(tmp_path / "runs" / "lf")
    killed = []

    def kill_a_rank():
        deadline = time.time() + 400
        while time.time() < deadline and not (run.path / "checkpoint" / "driver_state.json").exists():
            time.sleep(0.2)
        ray.kill(ray.get_actor("counterpoint-lf-learner-1"), no_restart=True)
        killed.append(True)

    threading.Thread(target=kill_a_rank, daemon=True).start()
    summary = run_training(cfg, run)
    assert killed
    records = run.read_metrics()
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]
    events = [json.loads(line) for line in (run.path / "events.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["event"] == "learner_failed"]
    assert len(failed) == 1 and failed[0]["failure"] == 1
    assert [e["step"] for e in events if e["event"] == "resume"] == [2]
    assert summary["policy_version"] == 4

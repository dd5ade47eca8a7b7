"""Stop a real run midway (SIGTERM, as a scheduler would) and resume it from its checkpoint."""

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from .helpers import SMOKE, small_overrides

pytestmark = pytest.mark.integration


def test_stop_midway_and_resume(tmp_path, model_cache):
    from counterpoint.config import load_config, resolved_json

    cfg = load_config(
        SMOKE,
        overrides=small_overrides(
            tmp_path, model_cache, "run.steps=5", "run.checkpoint_every_steps=2", "run.name=resumable"
        ),
    )
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(json.loads(resolved_json(cfg))))
    cli = [sys.executable, "-m", "counterpoint", "run"]
    first = subprocess.Popen(
        [*cli, "--config", str(config_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    run_dir = None
    deadline = time.time() + 400
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("resumable-*/checkpoint/driver_state.json"))
        if found:
            run_dir = found[0].parent.parent
            break
        assert first.poll() is None, first.stdout.read()[-3000:]
        time.sleep(0.5)
    assert run_dir is not None, "no checkpoint within the time limit"
    first.send_signal(signal.SIGTERM)
    out = first.communicate(timeout=120)[0]
    assert first.returncode == 143, out[-3000:]  # 128 + SIGTERM, after the run's cleanup
    stopped_at = json.loads((run_dir / "checkpoint" / "driver_state.json").read_text())["step"]
    assert stopped_at == 2
    events = [json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[-1] == "error"  # the stop is recorded

    second = subprocess.run([*cli, "--resume", str(run_dir)], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == [1, 2, 3, 4, 5]  # continues from the next step; nothing duplicated
    assert [r["policy_version"] for r in records if r["kind"] == "train"] == train_steps
    state = json.loads((run_dir / "checkpoint" / "driver_state.json").read_text())
    assert state["step"] == 5
    # the schedule history survived: the versions every step applied, in the controller's state
    from counterpoint.trainer.curriculum.controller import ScheduleController

    controller = ScheduleController(run_dir)
    assert [controller.applied_version(s) for s in range(1, 6)] == [1] * 5
    assert controller.audit()[0]["author"] == "config"
    assert "resume" in [json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()]

    # the finished run: resuming it as it is asks for a higher run.steps (exit 2, naming the field)
    again = subprocess.run([*cli, "--resume", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "run.steps" in again.stderr and "already trained 5 of its 5" in again.stderr
    # with more steps it trains on: the schedule is reopened, metrics continue at step 6
    more = subprocess.run(
        [*cli, "--resume", str(run_dir), "--set", "run.steps=6"], capture_output=True, text=True, timeout=600
    )
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    controller = ScheduleController(run_dir)
    actions = [(e["action"], e["author"]) for e in controller.audit()]
    assert actions[-3:] == [("finish", "driver"), ("reopen", "resume"), ("finish", "driver")]
    reopened = next(e["version"] for e in controller.audit() if e["action"] == "reopen")
    assert controller.applied_version(6) == reopened
    assert json.loads((run_dir / "summary.json").read_text())["policy_version"] == 6

"""A real run steered over REST, with actors, the controller and the control plane killed.

The run trains in this process (embedded Ray, vLLM, reward actors, 2 DeepSpeed ranks); the
control plane is `counterpoint serve` in a subprocess on loopback with real bearer tokens. An
operator thread pauses the run, reorders its stages, takes a domain out, kills the rollout
engine, a reward actor and the schedule controller, restarts the control plane, and resumes.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from .helpers import SMOKE, free_port, small_overrides

pytestmark = pytest.mark.integration

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789ab"
STAGES = (
    "schedule.policy.stages=["
    "{name: joint, domains: {math: {weight: 1}, code: {weight: 1}, creative: {weight: 1}}, advance: {type: manual}},"
    "{name: focus, domains: {math: {weight: 1}, creative: {weight: 1}}, advance: {type: manual}}]"
)


def _serve(runs_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "COUNTERPOINT_OPERATOR_TOKEN": OPERATOR, "COUNTERPOINT_VIEWER_TOKEN": VIEWER}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "counterpoint",
            "serve",
            "--runs-dir",
            str(runs_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=open(log, "a"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"control plane did not start: {log.read_text()[-2000:]}")


def _wait_for(predicate, timeout_s=300, what="condition"):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(what)


def _steps(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [
        json.loads(line)
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["kind"] == "train"
    ]


def test_operator_steers_a_live_run_through_failures(tmp_path, model_cache):
    import ray

    from counterpoint.cluster.launch import run_training
    from counterpoint.config import load_config
    from counterpoint.services.client import ApiError, ControlPlaneClient
    from counterpoint.trainer.run_folder import RunFolder

    cfg = load_config(
        SMOKE,
        overrides=small_overrides(
            tmp_path, model_cache, "run.steps=6", "schedule.policy=stages", STAGES, "schedule.pause_poll_seconds=0.2"
        ),
    )
    runs_dir = tmp_path / "runs"
    run = RunFolder(runs_dir / "live")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    observed: dict = {}
    errors: list[BaseException] = []

    servers: list[subprocess.Popen] = []

    def operator():
        try:
            server = _serve(runs_dir, port, log)
            servers.append(server)
            _wait_for(lambda: len(_steps(run.path)) >= 2, what="step 2")
            op = ControlPlaneClient(url, OPERATOR)
            paused = op.pause("live", reason="hold the run while we change it")
            held = _wait_for(
                lambda: (
                    json.loads((run.path / "controller.json").read_text()).get("last_plan", [0, 0, ""])[2] == "paused"
                ),
                what="the run to wait at a step boundary",
            )
            observed["paused_after"] = len(_steps(run.path))
            base = paused["version"]
            # two operators with the same base version: one wins, one is told it is stale
            first = op.reorder("live", ["focus", "joint"], base_version=base, reason="focus first")
            with pytest.raises(ApiError) as stale:
                op.reorder("live", ["joint", "focus"], base_version=base, reason="joint first")
            observed["stale_status"] = stale.value.status
            changed = op.set_domain(
                "live", "focus", "creative", weight=0.0, base_version=first["version"], reason="take creative out"
            )
            observed["version"] = changed["version"]
            with pytest.raises(ApiError) as viewer_write:
                ControlPlaneClient(url, VIEWER).pause("live")
            observed["viewer_write"] = viewer_write.value.status
            # failures: the rollout engine and a reward actor die; the control plane is
            # restarted; nothing of the schedule may be lost (controller.json is its one owner)
            for name in ("rollout-0", "reward-code-0"):
                ray.kill(ray.get_actor(f"counterpoint-live-{name}"), no_restart=False)
            server.terminate()
            server.wait(timeout=30)
            server = _serve(runs_dir, port, log)
            servers.append(server)
            observed["after_restart"] = ControlPlaneClient(url, VIEWER).schedule("live")
            observed["audit"] = ControlPlaneClient(url, VIEWER).audit("live")
            observed["resumed"] = op.resume("live", reason="go on")["version"]
            _wait_for(lambda: len(_steps(run.path)) >= 6, what="the run to finish its steps")
            observed["final_schedule"] = ControlPlaneClient(url, VIEWER).schedule("live")
            server.terminate()
            server.wait(timeout=30)
            observed["held"] = held
        except BaseException as err:  # surfaced in the main thread
            errors.append(err)

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    try:
        run_training(cfg, run)
        thread.join(timeout=120)
    finally:
        for server in servers:  # only the servers this test started, by their PIDs
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)
    assert not errors, repr(errors[0])

    steps = _steps(run.path)
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert observed["stale_status"] == 409 and observed["viewer_write"] == 403
    # every step trained the full batch, actor deaths notwithstanding
    assert all(sum(m["samples"] for m in r["domains"].values()) == 6 * 4 for r in steps)
    # the change applied at the first step boundary after it, with its version recorded
    boundary = observed["paused_after"]
    before, after = steps[:boundary], steps[boundary:]
    assert all(r["schedule"]["stage"] == "joint" for r in before)
    # (resuming is itself a change: the steps after it record the version the resume made)
    assert observed["resumed"] == observed["version"] + 1
    assert after and all(
        r["schedule"]["version"] == observed["resumed"] and r["schedule"]["stage"] == "focus" for r in after
    )
    assert all(set(r["domains"]) == {"math"} for r in after)  # focus without creative: math only
    assert all(r["policy_version"] == r["step"] for r in steps)
    # the engine restarted with the base model was given the current weights, not used stale
    assert all(r["rollout_policy_version"] == r["step"] - 1 for r in steps)
    events = [json.loads(line) for line in (run.path / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert "schedule_paused" in kinds and "schedule_resumed" in kinds
    recovered = {e.get("actor") for e in events if e["event"] in ("actor_recovered", "engine_reloaded")}
    assert "rollout-0" in recovered
    # the schedule and its audit log survived the control-plane restart
    assert observed["after_restart"]["version"] == observed["version"]
    assert [s["name"] for s in observed["after_restart"]["stages"]] == ["focus", "joint"]
    reasons = [e["reason"] for e in observed["audit"]["entries"]]
    assert {"focus first", "take creative out", "hold the run while we change it"} <= set(reasons)

"""Shared pieces of the integration tests: one tiny model built per session, a small config,
and a real `ray start` cluster on loopback that the tests end by PID."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMALL = [
    "run.steps=2",
    # enough warm start that some groups earn unequal rewards (11% greedy math, 38 s to build):
    # their gradients are the policy loss's own, with no entropy bonus to make one up
    "model.tiny.warm_start_max_steps=150",
    "model.tiny.warm_start_target_accuracy=1.0",
    "generation.prompts_per_step=6",
    "generation.samples_per_prompt=4",
    "generation.max_response_tokens=8",
    "domains.math.eval.prompts=4",
    "domains.math.weight=1",
    "domains.code.eval.prompts=4",
    "domains.code.reward_workers=1",
    "domains.creative.eval.prompts=4",
]


def informative(record: dict) -> bool:
    """Whether a train record's step had a group with unequal rewards (a policy gradient)."""
    return any(m.get("advantage_abs_mean", 0.0) > 0 for m in record["domains"].values())


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A model cache holding the small tiny model (built once per test session, ~20 s)."""
    from counterpoint.config import load_config
    from counterpoint.rollout.domains import kinds_of
    from counterpoint.trainer.models import resolve_model

    cache = tmp_path_factory.mktemp("model-cache")
    cfg = load_config(overrides=[*SMALL, f"model.cache_dir={cache}"])
    resolve_model(cfg.model, kinds_of(cfg.domains))
    return cache


def small_overrides(tmp_path: Path, cache: Path, *extra: str) -> list[str]:
    return [*SMALL, f"model.cache_dir={cache}", f"run.output_dir={tmp_path / 'runs'}", *extra]


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (all held open until each is chosen, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def ray_cluster(tmp_path):
    """`ray start --head --block` on 127.0.0.1 with auth disabled (tests only); yields the Jobs
    API address. Ended through its own PID: `--block` takes its Ray processes down with it."""
    gcs, dashboard, agent, agent_grpc, metrics, runtime_env = free_ports(6)
    # A cluster node has Counterpoint installed: its `python` is this environment's.
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "OMP_NUM_THREADS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
    }
    temp = Path("/tmp") / f"cp-ray-{os.getpid()}-{gcs}"  # short: Ray's socket paths have a length limit
    ray_bin = str(Path(bin_dir) / "ray")
    proc = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            "--num-cpus=8",
            "--num-gpus=0",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
            "--include-dashboard=true",
            # Ray's default agent ports are fixed numbers; another Ray on this host may hold them
            f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--metrics-export-port={metrics}",
            f"--runtime-env-agent-port={runtime_env}",
        ],
        env=env,
        stdout=open(tmp_path / "ray.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_jobs_api(address, proc, tmp_path / "ray.log")
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the group this fixture started, and nothing else
            proc.wait()


def _wait_for_jobs_api(address: str, proc, log: Path, timeout_s: float = 120) -> None:
    import httpx

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{address}/api/version", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the Jobs API at {address} did not come up in {timeout_s}s")

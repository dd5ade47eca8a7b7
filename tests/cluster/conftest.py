"""The integration tests' fixtures: one tiny model built per session, and a real `ray start`
cluster on loopback that the tests end by PID (the small config and other helpers are in
helpers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.helpers import SMOKE, free_ports


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A model cache holding the small tiny model (built once per test session, ~20 s)."""
    from counterpoint.config import load_config
    from counterpoint.rollout.domains import kinds_of
    from counterpoint.trainer.models import resolve_model

    cache = tmp_path_factory.mktemp("model-cache")
    cfg = load_config(SMOKE, overrides=[f"model.cache_dir={cache}"])
    resolve_model(cfg.model, kinds_of(cfg.domains))
    return cache


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

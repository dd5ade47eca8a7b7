"""A driver of an embedded cluster killed with SIGKILL leaves no process of its cluster behind:
the watchdog `start_ray` starts ends them by PID (Ray's dashboard and runtime-env agents
outlive the driver otherwise)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from counterpoint.cluster.watchdog import descendants, start_time

pytestmark = pytest.mark.integration

DRIVER = """
import time
from counterpoint.cluster.config import ClusterConfig
from counterpoint.cluster.runtime import start_ray
start_ray(ClusterConfig(num_cpus=2, object_store_mib=128))
print("ready", flush=True)
time.sleep(600)
"""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def test_a_killed_driver_leaves_no_process_of_its_cluster(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert driver.stdout.readline().strip() == "ready"
        time.sleep(5)  # the raylet starts its agents after ray.init returns
        started = {pid: start_time(pid) for pid in descendants([driver.pid]) if pid != driver.pid}
        assert len(started) >= 4, "expected the cluster's processes below the driver"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            left = [pid for pid, t in started.items() if t is not None and start_time(pid) == t]
            if not left:
                break
            time.sleep(0.5)
        assert not left, "still alive after the driver died: " + "; ".join(f"{p} {_cmdline(p)}" for p in left)
    finally:
        if driver.poll() is None:  # only the driver this test started, by its PID
            driver.kill()
            driver.wait(timeout=30)

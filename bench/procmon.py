"""Run a command and watch its process tree: the peak of the summed RSS of the process and all its
descendants (Ray's GCS, raylet and actors are descendants of an embedded run's driver), polled
every 0.2 s, with a hook called on each poll (the Counterpoint side watches its metrics file there).

Summed RSS counts pages shared between processes (torch's libraries, mapped model files) once per
process, so it is an upper bound on what the tree holds; both systems are measured this way.

Also recorded, to tell a measurement taken on a busy machine: the load average at the start and
the end, and the CPU seconds the rest of the machine used meanwhile (system-wide busy CPU time
minus the tree's own, whose processes' CPU times are read on each poll).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

POLL_SECONDS = 0.2


def tree_rss(root: psutil.Process, cpu: dict | None = None) -> tuple[int, int]:
    """(summed RSS in bytes, number of processes) of `root` and its descendants; with `cpu`, each
    process's user + system CPU seconds so far are noted in it by (pid, start time)."""
    total, count = 0, 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for p in procs:
        try:
            total += p.memory_info().rss
            count += 1
            if cpu is not None:
                t = p.cpu_times()
                cpu[(p.pid, p.create_time())] = t.user + t.system
        except psutil.Error:
            pass
    return total, count


def busy_cpu_seconds() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def run_watched(
    cmd: list[str],
    *,
    cwd: Path,
    env: dict,
    log_path: Path,
    on_poll: Callable[[], None] | None = None,
    timeout_s: float = 3600.0,
) -> dict:
    """Run `cmd` to its end, its output to `log_path`; returns rc, start time, wall seconds, the
    peak summed RSS of its tree and the most processes seen at once."""
    load_start, busy_start = os.getloadavg()[0], busy_cpu_seconds()
    cpu: dict = {}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        start = root.create_time()
        peak, peak_procs = 0, 0
        try:
            while proc.poll() is None:
                rss, count = tree_rss(root, cpu)
                peak, peak_procs = max(peak, rss), max(peak_procs, count)
                if on_poll is not None:
                    on_poll()
                if time.time() - start > timeout_s:
                    raise TimeoutError(f"{cmd[0]} ran past {timeout_s:.0f}s")
                time.sleep(POLL_SECONDS)
        except BaseException:
            stop(proc)
            raise
        if on_poll is not None:
            on_poll()
    wall = time.time() - start
    tree_cpu = sum(cpu.values())
    return {
        "rc": proc.returncode,
        "start": start,
        "wall_seconds": round(wall, 3),
        "peak_tree_rss_mib": round(peak / 2**20, 1),
        "peak_processes": peak_procs,
        "tree_cpu_seconds": round(tree_cpu, 2),
        "other_cpu_seconds": round(max(0.0, busy_cpu_seconds() - busy_start - tree_cpu), 2),
        "load_average_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }


def stop(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the process we started (Counterpoint's CLI then stops its Ray processes itself),
    SIGKILL it if it is still there after `grace_s`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

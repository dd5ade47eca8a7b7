"""A watchdog for the embedded cluster: when the driver dies, end what it started, by PID.

Ray's own processes exit when the driver that started them is killed, except some of the agents
the raylet starts (the dashboard agent and the runtime-env agent stay alive after a SIGKILL of
the driver, measured here). So `start_ray` starts this watchdog in its own session, given the
driver's PID and the PIDs of the Ray processes the driver started (the roots). Every half second
it records the roots and their descendants, each with its start time; once the driver is gone it
gives Ray a moment to tear itself down, then sends SIGTERM and, after a grace period, SIGKILL to
every recorded process still alive with the same start time (so a reused PID is never hit).
Nothing is found by name. A driver that shuts its cluster down normally ends the watchdog first.

    python -m counterpoint.cluster.watchdog --driver PID --roots PID[,PID...]
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

POLL_SECONDS = 0.5
TEARDOWN_SECONDS = 2.0
"""How long Ray gets to end its own processes after the driver died."""
KILL_GRACE_SECONDS = 3.0


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after the command name start at 3


def children_by_parent() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(roots: Iterable[int]) -> set[int]:
    """`roots` and every process below them."""
    tree, found, todo = children_by_parent(), set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(tree.get(pid, []))
    return found


def alive(pid: int, started: int) -> bool:
    return start_time(pid) == started


def watch(driver: int, roots: list[int]) -> list[int]:
    """Block until `driver` exits, then end the recorded processes; returns the PIDs signalled."""
    driver_started = start_time(driver)
    seen: dict[int, int] = {}
    own = os.getpid()
    while driver_started is not None and alive(driver, driver_started):
        for pid in descendants(roots):
            started = start_time(pid)
            if started is not None and pid != own:
                seen.setdefault(pid, started)
        time.sleep(POLL_SECONDS)
    time.sleep(TEARDOWN_SECONDS)
    signalled = []
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 0.0)):
        left = [pid for pid, started in seen.items() if alive(pid, started)]
        for pid in left:
            try:
                os.kill(pid, sig)
                signalled.append(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline and any(alive(p, seen[p]) for p in left):
            time.sleep(0.1)
    return signalled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="counterpoint-watchdog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--driver", type=int, required=True, help="the driver's PID")
    parser.add_argument("--roots", required=True, help="comma-separated PIDs of the Ray processes the driver started")
    args = parser.parse_args(argv)
    watch(args.driver, [int(p) for p in args.roots.split(",") if p])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the integration tests share besides fixtures: the small run they all start from, the
helpers that build their overrides, and free loopback ports."""

from __future__ import annotations

import socket
from pathlib import Path

SMOKE = "smoke"
"""The shipped smoke config (src/counterpoint/configs/smoke.yaml): the default run's shape cut to
2 small steps, with a tiny model warm-started enough that some groups earn unequal rewards (their
gradients are the policy loss's own, with no entropy bonus to make one up)."""


def informative(record: dict) -> bool:
    """Whether a train record's step had a group with unequal rewards (a policy gradient)."""
    return any(m.get("advantage_abs_mean", 0.0) > 0 for m in record["domains"].values())


def small_overrides(tmp_path: Path, cache: Path, *extra: str) -> list[str]:
    """Overrides of the smoke config for one test: its model cache and run folder, then `extra`."""
    return [f"model.cache_dir={cache}", f"run.output_dir={tmp_path / 'runs'}", *extra]


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

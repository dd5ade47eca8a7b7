"""What the integration tests share besides fixtures: the small run they all start from, the
helpers that build their overrides, and free loopback ports."""

from __future__ import annotations

import socket
from pathlib import Path

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

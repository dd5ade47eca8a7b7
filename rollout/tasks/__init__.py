"""Synthetic task domains: seeded generators with held-out eval splits and their rewards."""

from __future__ import annotations

from counterpoint.rollout.tasks.base import TaskDomain, TaskSource


def build_domain(name: str, *, sandbox=None) -> TaskDomain:
    """The domain object for a config name. `sandbox` is the code domain's `CodeSandboxConfig`."""
    if name == "math":
        from counterpoint.rollout.tasks.math import MathDomain

        return MathDomain()
    if name == "code":
        from counterpoint.rollout.sandbox import SandboxLimits
        from counterpoint.rollout.tasks.code import CodeDomain

        if sandbox is None:
            return CodeDomain()
        return CodeDomain(
            SandboxLimits(
                cpu_seconds=sandbox.cpu_seconds,
                memory_bytes=sandbox.memory_mib * 2**20,
                wall_seconds=sandbox.wall_seconds,
            )
        )
    if name == "creative":
        from counterpoint.rollout.tasks.creative import CreativeDomain

        return CreativeDomain()
    raise KeyError(f"unknown domain {name!r}")


__all__ = ["TaskDomain", "TaskSource", "build_domain"]

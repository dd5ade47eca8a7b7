"""Task suites: seeded generators with held-out eval splits and the rewards they call, one module
per suite family. A domain is built from its config slice by the registry in `rollout/domains.py`
(`build_domain(name, cfg)`), not from here."""

from __future__ import annotations

from counterpoint.rollout.tasks.base import TaskDomain, TaskSource

__all__ = ["TaskDomain", "TaskSource"]

"""A reward worker: scores prompt groups of one domain with that domain's reward function.

A plain class; the cluster layer runs a pool of them per domain as Ray actors. Built from the
domain's name and config slice through the registry (`rollout/domains.py`), so a domain of any
name and kind gets its reward from config alone. Scoring runs on the calling thread, which in a
synchronous Ray actor is the process's main thread, as math-verify's signal-based timeouts need.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from counterpoint.rollout.config import DomainConfig
from counterpoint.rollout.domains import build_domain, domain_config, sandbox_limits
from counterpoint.rollout.records import Prompt, Score


class RewardWorker:
    def __init__(
        self, name: str, cfg: DomainConfig | Mapping[str, Any] | None = None, import_path: list[str] | None = None
    ):
        """`name`: the domain's name in the config; `cfg`: its config slice (None: the defaults of
        the kind `name`); `import_path`: the folders a python kind's reward function is imported
        from (the driver's working directory and PYTHONPATH, as absolute paths)."""
        cfg = domain_config(name, cfg)
        self.name = name
        self.kind = cfg.kind
        self.domain = build_domain(name, cfg, import_path)
        limits = sandbox_limits(cfg)
        if limits is not None:
            from counterpoint.rollout.rewards.sandbox.bwrap import check_sandbox

            check_sandbox(limits)  # fail at start-up with a clear message, not on the first batch
        if hasattr(self.domain, "warm_up"):
            self.domain.warm_up()  # e.g. math-verify's checker process: a missing one fails here

    def score(self, groups: list[tuple[Prompt, list[str]]]) -> tuple[list[list[Score]], float]:
        """Scores for each (prompt, responses) group, and the seconds spent."""
        started = time.perf_counter()
        scores = [self.domain.score_group(prompt, responses) for prompt, responses in groups]
        return scores, time.perf_counter() - started

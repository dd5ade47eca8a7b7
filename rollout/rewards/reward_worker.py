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
from counterpoint.rollout.records import Prompt, WorkerScores
from counterpoint.rollout.rewards.measure import GroupMeasurer


class RewardWorker:
    def __init__(
        self,
        name: str,
        cfg: DomainConfig | Mapping[str, Any] | None = None,
        import_path: list[str] | None = None,
        *,
        semantic: bool = False,
    ):
        """`name`: the domain's name in the config; `cfg`: its config slice (None: the defaults of
        the kind `name`); `import_path`: the folders a python kind's reward function is imported
        from (the driver's working directory and PYTHONPATH, as absolute paths); `semantic`: load
        the sentence encoder of the semantic diversity measures now (seconds), not in a step."""
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
        self.measurer = GroupMeasurer(self.domain)
        if semantic:
            self.measurer.encoder.encode(["warm up"])

    def score(self, groups: list[tuple[Prompt, list[str]]], diversity: Mapping | None = None) -> WorkerScores:
        """Scores for each (prompt, responses) group and the seconds spent; with `diversity`
        (`DiversityConfig.options`), each group's diversity measures too (rewards/measure.py)."""
        started = time.perf_counter()
        scores = [self.domain.score_group(prompt, responses) for prompt, responses in groups]
        seconds = time.perf_counter() - started
        measures, measure_seconds = self.measurer.measure(groups, scores, diversity)
        return WorkerScores(scores, seconds, measures, measure_seconds)

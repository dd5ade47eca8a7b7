"""A reward worker: scores prompt groups of one domain with that domain's reward function.

A plain class; the cluster layer runs a pool of them per domain as Ray actors. Scoring runs on
the calling thread, which in a synchronous Ray actor is the process's main thread, as
math-verify's signal-based timeouts need.
"""

from __future__ import annotations

import time

from counterpoint.rollout.records import Prompt, Score
from counterpoint.rollout.tasks import build_domain


class RewardWorker:
    def __init__(self, domain: str, sandbox_config=None, suite: str = "synthetic", rewards_config=None):
        self.domain = build_domain(domain, sandbox=sandbox_config, suite=suite, rewards=rewards_config)
        if domain == "code":
            from counterpoint.rollout.sandbox import check_sandbox

            check_sandbox()  # fail at start-up with a clear message, not on the first batch
        if hasattr(self.domain, "warm_up"):
            self.domain.warm_up()  # e.g. math-verify's checker process: a missing one fails here

    def score(self, groups: list[tuple[Prompt, list[str]]]) -> tuple[list[list[Score]], float]:
        """Scores for each (prompt, responses) group, and the seconds spent."""
        started = time.perf_counter()
        scores = [self.domain.score_group(prompt, responses) for prompt, responses in groups]
        return scores, time.perf_counter() - started

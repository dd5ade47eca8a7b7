"""Domain weights inside one curriculum stage: the DUMP UCB sampler and the entropy-aware rule.

Pure: the standard library only. The schedule (trainer/curriculum.py) combines them with the
operator's weights when it plans a step.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping


def softmax(scores: Mapping[str, float], temperature: float) -> dict[str, float]:
    """exp(s/τ) / Σ exp(s/τ), computed after subtracting the maximum so a small τ cannot overflow."""
    if temperature <= 0:
        raise ValueError("temperature must be above 0")
    if not scores:
        return {}
    top = max(scores.values())
    exps = {k: math.exp((v - top) / temperature) for k, v in scores.items()}
    total = sum(exps.values())
    return {k: v / total for k, v in exps.items()}


class DumpSampler:
    """UCB over domains scored by how learnable they are right now (DUMP, arXiv 2504.09710).

    Per domain j: a sliding window of the last `window` values of |A| (the absolute advantage of
    its samples); n_j counts every |A| value seen for j, N = Σ n_j.
        UCB_j = mean(window_j) + c · sqrt(2 · ln(N + 1) / (n_j + 1))
        p_j   = softmax(UCB / τ)
    Mean |A| measures learnability: groups that are all right or all wrong give A = 0.
    Published defaults: window 300, c = 1, τ = 0.1. The paper's counting unit for n_j and N is
    *unverified*; here both count samples (values of |A|), and an empty window has mean 0.
    """

    def __init__(self, window: int = 300, c: float = 1.0, tau: float = 0.1):
        if window < 1 or c < 0 or tau <= 0:
            raise ValueError("DumpSampler needs window >= 1, c >= 0 and tau > 0")
        self.window, self.c, self.tau = window, c, tau
        self._values: dict[str, deque[float]] = {}
        self._counts: dict[str, int] = {}

    def update(self, domain: str, abs_advantages: Iterable[float]) -> None:
        """Add the |A| of a domain's new samples (non-finite values are skipped)."""
        values = self._values.setdefault(domain, deque(maxlen=self.window))
        for v in abs_advantages:
            v = abs(float(v))
            if math.isfinite(v):
                values.append(v)
                self._counts[domain] = self._counts.get(domain, 0) + 1

    def update_mean(self, domain: str, mean_abs_advantage: float, samples: int) -> None:
        """Add `samples` values equal to a step's mean |A| (when only per-step means are at hand,
        as in the driver's per-domain metrics; the window mean is then approximate)."""
        self.update(domain, [mean_abs_advantage] * min(int(samples), self.window))
        extra = int(samples) - min(int(samples), self.window)
        if extra > 0 and math.isfinite(mean_abs_advantage):
            self._counts[domain] = self._counts.get(domain, 0) + extra

    def ucb(self, domains: Iterable[str]) -> dict[str, float]:
        domains = list(domains)
        total = sum(self._counts.get(d, 0) for d in domains)
        out = {}
        for d in domains:
            values = self._values.get(d)
            mean = sum(values) / len(values) if values else 0.0
            out[d] = mean + self.c * math.sqrt(2.0 * math.log(total + 1) / (self._counts.get(d, 0) + 1))
        return out

    def weights(self, domains: Iterable[str]) -> dict[str, float]:
        """Sampling probabilities softmax(UCB/τ) over `domains`; they sum to 1."""
        return softmax(self.ucb(domains), self.tau)

    def state_dict(self) -> dict:
        return {"values": {d: list(v) for d, v in self._values.items()}, "counts": dict(self._counts)}

    def load_state_dict(self, state: dict) -> None:
        self._values = {d: deque((float(x) for x in v), maxlen=self.window) for d, v in state["values"].items()}
        self._counts = {d: int(n) for d, n in state["counts"].items()}


def entropy_aware_weights(
    weights: Mapping[str, float],
    entropy: Mapping[str, float],
    targets: Mapping[str, float | None],
    factor: float,
) -> dict[str, float]:
    """Down-weight every domain whose measured entropy is below its budget (docs/research.md §5,
    the entropy-aware rule, new in this project): w_j ← w_j · factor when H_j < target_j.

    A domain with no target, or no entropy measured yet, keeps its weight. `factor` in [0, 1]:
    1 turns the rule off, 0 holds the domain back entirely.
    """
    if not 0.0 <= factor <= 1.0:
        raise ValueError("factor must be in [0, 1]")
    out = {}
    for d, w in weights.items():
        target, h = targets.get(d), entropy.get(d)
        below = target is not None and h is not None and math.isfinite(h) and h < target
        out[d] = w * factor if below else w
    return out

"""Stage orderings for a curriculum: joint, sequential, and ordered by measured transfer (BWT).

Pure: the standard library and the schedule records. Each policy returns the `Stage` list a run
starts with; an operator can reorder it later over REST.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from counterpoint.trainer.curriculum.stages import AdvanceRule, DomainSetting, ManualRule, Stage, StepsRule

Transfer = Mapping[str, Mapping[str, float]]
"""B[i][j] = B[i→j]: the change of domain i's score when domain j is trained after i."""


def joint_schedule(
    weights: Mapping[str, float], *, name: str = "joint", advance: AdvanceRule | None = None
) -> list[Stage]:
    """One stage training every domain at once with the given weights (manual advance by default)."""
    return [
        Stage(
            name=name, domains={d: DomainSetting(weight=w) for d, w in weights.items()}, advance=advance or ManualRule()
        )
    ]


def sequential_schedule(order: Sequence[str], *, steps_per_stage: int) -> list[Stage]:
    """One stage per domain in `order`, each advancing after `steps_per_stage` steps."""
    if len(set(order)) != len(order):
        raise ValueError(f"order lists a domain twice: {list(order)}")
    return [
        Stage(name=d, domains={d: DomainSetting(weight=1.0)}, advance=StepsRule(steps=steps_per_stage)) for d in order
    ]


@dataclass(frozen=True)
class TransferMetrics:
    bwt: float
    """Backward transfer: mean change of earlier tasks' scores by the end (negative = forgetting)."""
    fwt: float | None
    """Forward transfer: mean score on a task just before training it, over its baseline."""


def transfer_metrics(scores: Sequence[Sequence[float]], baseline: Sequence[float] | None = None) -> TransferMetrics:
    """BWT and FWT of a sequential run (GEM, arXiv 1706.08840).

    `scores` (T, T): scores[j][i] is the score on task i after training through stage j, stage j
    training task j. `baseline` (T,): each task's score before any training (needed for FWT).
        BWT = 1/(T−1) · Σ_{i<T} (R[T, i] − R[i, i])        FWT = 1/(T−1) · Σ_{i≥2} (R[i−1, i] − b_i)
    (1-based as in the paper). Normalise scores per task first when tasks use different scales.
    """
    t = len(scores)
    if t < 2 or any(len(row) != t for row in scores):
        raise ValueError(
            f"scores must be a T x T matrix with T >= 2; got {t} rows of lengths {[len(r) for r in scores]}"
        )
    bwt = sum(scores[t - 1][i] - scores[i][i] for i in range(t - 1)) / (t - 1)
    fwt = None
    if baseline is not None:
        if len(baseline) != t:
            raise ValueError(f"baseline must have {t} entries, got {len(baseline)}")
        fwt = sum(scores[i - 1][i] - baseline[i] for i in range(1, t)) / (t - 1)
    return TransferMetrics(bwt=bwt, fwt=fwt)


def estimate_transfer(
    after_own: Mapping[str, float], after_pair: Mapping[tuple[str, str], float]
) -> dict[str, dict[str, float]]:
    """B[i→j] = R_i(after i then j) − R_i(after i), from short probe stages (docs/research.md §5).

    `after_own[i]`: domain i's score after its own probe stage; `after_pair[(i, j)]`: i's score
    after i's probe then j's. Pairs not probed are left out (treated as 0 by `predicted_score`).
    """
    out: dict[str, dict[str, float]] = {i: {} for i in after_own}
    for (i, j), score in after_pair.items():
        if i not in after_own:
            raise ValueError(f"after_pair has ({i!r}, {j!r}) but after_own has no score for {i!r}")
        out[i][j] = score - after_own[i]
    return out


def predicted_score(order: Sequence[str], transfer: Transfer) -> float:
    """Additive prediction of an order's final score, up to a constant: Σ over pairs i before j
    of B[i→j] (each domain's own-stage score is the same in every order, so it drops out)."""
    return sum(transfer.get(a, {}).get(b, 0.0) for k, a in enumerate(order) for b in order[k + 1 :])


def best_order(domains: Sequence[str], transfer: Transfer, *, exhaustive_max: int = 6) -> list[str]:
    """The order of `domains` with the highest `predicted_score`, the BWT-guided policy of
    Omni-Thinker (arXiv 2507.14783) in the implementable form of docs/research.md §5 (the paper's own
    estimation procedure is *unverified*).

    Exhaustive over permutations for T ≤ `exhaustive_max` (ties: the first in the order
    itertools.permutations yields, i.e. closest to the given order). Beyond, greedy: the next
    domain is the one whose transfer onto the domains still unplaced is largest (ties: given order).
    """
    domains = list(domains)
    if len(set(domains)) != len(domains):
        raise ValueError(f"domains listed twice: {domains}")
    if len(domains) <= exhaustive_max:
        return list(max(itertools.permutations(domains), key=lambda o: predicted_score(o, transfer)))
    order, rest = [], list(domains)
    while rest:
        gain = {k: sum(transfer.get(k, {}).get(r, 0.0) for r in rest if r != k) for k in rest}
        pick = max(rest, key=lambda k: gain[k])  # max keeps the first of equal keys
        order.append(pick)
        rest.remove(pick)
    return order


def bwt_guided_schedule(domains: Sequence[str], transfer: Transfer, *, steps_per_stage: int) -> list[Stage]:
    """A sequential schedule in the order `best_order` predicts to end with the best scores."""
    return sequential_schedule(best_order(domains, transfer), steps_per_stage=steps_per_stage)

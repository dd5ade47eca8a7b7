"""The plan of one step: the one record that goes from the schedule to the learner.

`ScheduleState.plan` makes it (stage, kind, prompts per domain, entropy targets, the schedule
version); the loop draws the prompts it names, the kind picks the batch source (rollouts for RL,
demonstrations for SFT), and the step's metrics record `describe()`. Pure: pydantic and the
standard library.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class StageKind(str, Enum):
    """What a stage trains with: policy-gradient steps on sampled rollouts, or supervised steps
    on the domains' demonstrations. Both go through the same learner update."""

    RL = "rl"
    SFT = "sft"


class StepPlan(BaseModel):
    """What the driver does at one step boundary."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    step: int
    """The step this plan is for (steps are numbered from 1, as in metrics.jsonl)."""
    status: Literal["train", "paused", "done"]
    """"train": run the step; "paused": wait and ask again; "done": stop."""
    schedule_version: int
    """The schedule version this plan comes from (recorded with the step)."""
    stage: str | None = None
    """The active stage (None when every stage is finished)."""
    kind: StageKind | None = None
    """The active stage's kind (None when done)."""
    prompts_per_domain: dict[str, int] = {}
    """Prompts to draw from each domain; sums to the step's prompt count when training."""
    entropy_targets: dict[str, float] = {}
    """Entropy budgets of the stage's domains that have one (the adaptive controllers aim at them)."""
    reason: str = ""
    """Why the run is paused or done."""

    def describe(self) -> dict:
        """The plan as the step's metrics record it (`"schedule"` in metrics.jsonl)."""
        return {
            "version": self.schedule_version,
            "stage": self.stage,
            "kind": self.kind.value if self.kind else None,
            "prompts": dict(self.prompts_per_domain),
            "entropy_targets": dict(self.entropy_targets),
        }


def split_by_weight(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer shares of `total` proportional to `weights`, summing exactly to `total`
    (largest remainder; ties go to the larger weight)."""
    norm = sum(weights.values())
    if not norm > 0:
        raise ValueError(f"weights must sum to more than 0: {weights}")
    exact = {k: total * w / norm for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (exact[k] - counts[k], weights[k]), reverse=True)
    for k in by_remainder[: total - sum(counts.values())]:
        counts[k] += 1
    return counts

"""What the loop asks at every step boundary: how many prompts of each domain to draw."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StepPlan:
    prompts_per_domain: dict[str, int]
    schedule_version: int | None = None
    """The schedule version this step applied (None for a fixed split)."""
    stage: str | None = None
    extra: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"version": self.schedule_version, "stage": self.stage, "prompts": self.prompts_per_domain, **self.extra}


class FixedPlanner:
    """The same split every step: the config's domain weights."""

    def __init__(self, prompts_per_domain: dict[str, int]):
        self.prompts_per_domain = dict(prompts_per_domain)

    def plan(self, step: int) -> StepPlan:
        return StepPlan(self.prompts_per_domain)

    def report(self, step: int, record: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class SchedulePlanner:
    """The live schedule as the loop's planner: asks the run's schedule controller at every step
    boundary (so an operator's change applies at the next step, with its version recorded),
    waits while the run or its stage is paused, and reports each step's metrics back so
    advance rules can act on them.

    `controller`: anything with `next_plan(step)` and `report(step, metrics)` (the controller
    itself in a test, a proxy to its Ray actor in a run). `sleep` is injectable for tests.
    """

    def __init__(self, controller, prompts_per_step: int, *, poll_seconds: float = 1.0, on_event=None, sleep=None):
        import time

        self.controller = controller
        self.prompts_per_step = prompts_per_step
        self.poll_seconds = poll_seconds
        self.on_event = on_event or (lambda kind, **fields: None)
        self.sleep = sleep or time.sleep

    def plan(self, step: int) -> StepPlan:
        from counterpoint.config import split_by_weight

        announced = None
        while True:
            p = self.controller.next_plan(step)
            if p.status == "train":
                if announced is not None:
                    self.on_event("schedule_resumed", step=step, version=p.version)
                prompts = split_by_weight(self.prompts_per_step, p.weights)
                return StepPlan(prompts, p.version, p.stage,
                                extra={"kind": p.kind, "entropy_targets": dict(p.entropy_targets)})
            if p.status == "done":
                return StepPlan({}, p.version, p.stage, extra={"done": True, "reason": p.reason})
            if announced != p.version:
                self.on_event("schedule_paused", step=step, version=p.version, stage=p.stage, reason=p.reason)
                announced = p.version
            self.sleep(self.poll_seconds)

    def report(self, step: int, record: dict) -> None:
        self.controller.report(step, record["domains"])

    def state_dict(self) -> dict:
        return {}  # the controller persists the schedule itself, in the run folder

    def load_state_dict(self, state: dict) -> None:
        pass

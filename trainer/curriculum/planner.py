"""The loop's view of the schedule: at every step boundary, the plan of the next step.

`SchedulePlanner` asks the run's `ScheduleController` (the owner of `controller.json`) for the
step's plan, so an operator's change applies at the next step with its version recorded; it
waits while the run or its stage is paused, reports each step's metrics back so advance rules can
act on them, and carries the schedule's state in and out of checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from counterpoint.trainer.curriculum.plan import StepPlan


class Controller(Protocol):
    """The `ScheduleController` methods the planner calls."""

    def next_plan(self, step: int, prompts_per_step: int) -> StepPlan: ...

    def preview_plan(self, step: int, prompts_per_step: int) -> StepPlan: ...

    def report(self, step: int, per_domain_metrics: dict) -> None: ...

    def checkpoint_state(self) -> dict: ...

    def rewind(self, state: dict, *, author: str = "resume", reason: str = "") -> dict: ...


class SchedulePlanner:
    """`controller`: the run's ScheduleController; `sleep` and `on_event` are injectable for tests."""

    def __init__(
        self,
        controller: Controller,
        prompts_per_step: int,
        *,
        poll_seconds: float = 1.0,
        on_event: Callable[..., Any] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        self.controller = controller
        self.prompts_per_step = prompts_per_step
        self.poll_seconds = poll_seconds
        self.on_event = on_event or (lambda kind, **fields: None)
        self.sleep = sleep

    def plan(self, step: int, wait: bool = True) -> StepPlan:
        """The plan of `step` once it is not paused: "train" or "done". `wait=False` (a step
        planned ahead of its boundary) returns a "paused" plan at once instead of waiting."""
        announced = None
        while True:
            plan = self.controller.next_plan(step, self.prompts_per_step)
            if plan.status != "paused" or not wait:
                if announced is not None and plan.status == "train":
                    self.on_event("schedule_resumed", step=step, version=plan.schedule_version)
                return plan
            if announced != plan.schedule_version:
                self.on_event(
                    "schedule_paused", step=step, version=plan.schedule_version, stage=plan.stage, reason=plan.reason
                )
                announced = plan.schedule_version
            self.sleep(self.poll_seconds)

    def preview(self, step: int) -> StepPlan:
        """What `plan(step)` would give now, without recording it or waiting."""
        return self.controller.preview_plan(step, self.prompts_per_step)

    def report(self, step: int, record: dict) -> None:
        self.controller.report(step, record["domains"])

    def state_dict(self) -> dict:
        """The schedule's state as of now, for the checkpoint."""
        return self.controller.checkpoint_state()

    def load_state_dict(self, state: dict, *, step: int) -> None:
        """Back to a checkpoint's schedule state (a resumed or restarted run)."""
        if state:
            self.controller.rewind(state, author="resume", reason=f"resumed from the checkpoint at step {step}")

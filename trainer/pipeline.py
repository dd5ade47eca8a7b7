"""Where each step's batch comes from: made when its step trains (strictly on-policy), or up to
`generation.max_staleness` steps ahead on a background thread while the learner trains
(asynchronous rollouts). `trainer/loop.py` trains on what `RolloutPipeline.take` gives it; the
batch sources themselves (rollouts, demonstrations) are the loop's, passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from counterpoint.trainer.curriculum.plan import StageKind, StepPlan
from counterpoint.trainer.metrics import PhaseTimer
from counterpoint.trainer.sampling import draw_fitting, prompt_limit

if TYPE_CHECKING:
    from counterpoint.config import CounterpointConfig
    from counterpoint.trainer.loop import LoopState, RunParts, StepBatch


def due(step: int, every: int) -> bool:
    """Whether something done every `every` steps (0: never) falls after `step`."""
    return every > 0 and step % every == 0


@dataclass
class PendingStep:
    """A step on its way: planned, its prompts drawn, its batch made (generate, score,
    advantages) now or on the pipeline's thread, by the policy the engines held then."""

    step: int
    plan: StepPlan
    drawn: list
    skipped: dict[str, int]
    timer: PhaseTimer
    """The batch source's phases (plan, generate, score, advantages)."""
    future: Future | None = None
    """The StepBatch being made on the pipeline's thread; None until then, or when made in the
    loop's thread (`made`)."""
    made: StepBatch | None = None

    @property
    def background(self) -> bool:
        return self.future is not None


class RolloutPipeline:
    """Where each step's batch comes from: made on demand (`generation.max_staleness` 0, strictly
    on-policy), or up to `max_staleness` steps ahead on a background thread while the learner
    trains (asynchronous rollouts, as verl, prime-rl and AReaL have them).

    Every step is planned in the loop's thread, in step order, at the moment its rollout starts:
    the schedule version it applies is the one current then (an operator's change reaches the
    steps launched after it), and the plan's prompts are drawn then. Nothing is launched past
    the run's last step or past a checkpoint step, so a checkpoint's driver state (task cursors,
    the schedule) never has prompts drawn ahead and a resumed run replays exactly. A paused
    schedule is not waited on ahead: the step in hand trains, and the next boundary waits. SFT
    steps (demonstrations, nothing generated) are made when they train.
    """

    def __init__(
        self,
        cfg: CounterpointConfig,
        parts: RunParts,
        sources: Mapping[StageKind, Callable[..., StepBatch]],
        max_staleness: int | None = None,
        on_event: Callable[..., None] = lambda kind, **fields: None,
    ):
        """`sources`: each stage kind's batch source, called as
        `source(cfg, parts, drawn, step, learner_version, timer) -> StepBatch`."""
        self.cfg, self.parts, self.sources, self.on_event = cfg, parts, sources, on_event
        self.max_staleness = cfg.generation.max_staleness if max_staleness is None else max_staleness
        self.pending: dict[int, PendingStep] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollouts") if self.max_staleness else None

    def take(self, step: int, state: LoopState) -> PendingStep:
        """The step `step` (launched ahead, or planned now), its batch made if it is not on its way.

        A step launched ahead trains as planned unless the schedule has since moved it (paused,
        done, another stage or kind, other domains): then its rollout is dropped (an event
        says so) and the step is planned again at its boundary, so every step trains what the
        schedule said when its rollout started, and no stage trains a step past its end. A
        change of weights within the stage reaches the steps launched after it."""
        pending = self.pending.pop(step, None)
        if pending is not None:
            fresh = self.parts.planner.preview(step)
            if _moved(pending.plan, fresh):
                self._drop(pending, fresh)
                pending = None
        if pending is None:
            pending = self._draw(step, self.parts.planner.plan(step))
        if pending.plan.status == "train" and not pending.background:
            pending.made = self._make(pending, state.policy_version)
        return pending

    def fill(self, state: LoopState) -> None:
        """Launch the steps after `state.step + 1` (the one about to train) up to `max_staleness`
        ahead: called once that step's batch is in hand, before its update."""
        for step in range(state.step + 2, state.step + 2 + self.max_staleness):
            if step in self.pending:
                continue
            if step > self.cfg.run.steps or due(step - 1, self.cfg.run.checkpoint_every_steps):
                return  # the run's end, or a checkpoint after step - 1: nothing drawn past it
            plan = self.parts.planner.plan(step, wait=False)
            if plan.status == "paused":
                return  # planned (and waited for) at its own boundary
            pending = self.pending[step] = self._draw(step, plan)
            if plan.status != "train":
                return
            if plan.kind is StageKind.RL:
                pending.future = self.executor.submit(self._make, pending, state.policy_version)

    def _draw(self, step: int, plan: StepPlan) -> PendingStep:
        pending = PendingStep(step, plan, [], {}, PhaseTimer())
        if plan.status == "train":
            with pending.timer("plan"):
                for d, n in plan.prompts_per_domain.items():
                    limit = prompt_limit(self.cfg, d, self.parts.max_model_len)
                    items, pending.skipped[d] = draw_fitting(self.parts.sources[d], n, self.parts.prompt_tokens, limit)
                    pending.drawn += items
        return pending

    def _make(self, pending: PendingStep, learner_version: int) -> StepBatch:
        source = self.sources[pending.plan.kind]
        return source(self.cfg, self.parts, pending.drawn, pending.step, learner_version, pending.timer)

    def _drop(self, pending: PendingStep, fresh: StepPlan) -> None:
        """Forget a step launched ahead, and every one launched after it (they were planned on
        the same stale schedule); what is on its way finishes first, keeping the engines' calls
        in order."""
        dropped = [pending] + [self.pending.pop(s) for s in sorted(self.pending)]
        for p in dropped:
            if p.future is not None:
                p.future.exception()  # wait; an error of a dropped rollout is not the run's
        self.on_event(
            "rollout_discarded",
            step=pending.step,
            steps=[p.step for p in dropped],
            planned_version=pending.plan.schedule_version,
            version=fresh.schedule_version,
            reason=f"the schedule moved the step ({_describe(pending.plan)} -> {_describe(fresh)})",
        )

    def close(self) -> None:
        """Wait for what is in flight (its engine calls end with it), then stop the thread."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()


def _moved(planned: StepPlan, now: StepPlan) -> bool:
    """Whether a step planned ahead no longer matches the schedule: status, stage, kind, domains."""
    if planned.status != now.status or planned.status != "train":
        return planned.status != now.status
    return (planned.stage, planned.kind, set(planned.prompts_per_domain)) != (
        now.stage,
        now.kind,
        set(now.prompts_per_domain),
    )


def _describe(plan: StepPlan) -> str:
    if plan.status != "train":
        return plan.status
    return f"stage {plan.stage!r} {plan.kind.value} {sorted(plan.prompts_per_domain)}"

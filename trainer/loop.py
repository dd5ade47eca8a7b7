"""The RL loop: plan → batch (generate → score → advantages, or demonstrations) → update → weight
sync → metrics.

Written against small interfaces (a rollout client, a reward client, a learner client, a planner),
so the same loop drives Ray actors in production and in-process fakes in a unit test. One step:

1. `parts.planner.plan(step)` gives the typed `StepPlan` (stage, kind, prompts per domain,
   entropy targets, schedule version) from the run's schedule;
2. each domain's `TaskSource` yields the prompts the plan names;
3. the plan's kind picks the batch source: `rollout_batch` (RL) or `demonstration_batch` (SFT);
4. `parts.learner.train_step` updates on it with the kind's objective, the same update for both;
5. the new weights go to the engines as the next policy version; the step's metrics are logged.

Steps 1-3 are the `RolloutPipeline`'s (trainer/pipeline.py): in step order, when the step trains
(`generation.max_staleness` 0), or up to that many steps ahead on a background thread while the
learner trains (asynchronous rollouts); 4-5 are `finish_step`'s, which also records each
sample's lag behind the learner and gives it to the update for the off-policy correction.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from counterpoint.rollout.diversity import mean_over_groups
from counterpoint.rollout.records import Prompt, Sample, Score, ScoredSample, Scoring
from counterpoint.rollout.tasks import TaskSource
from counterpoint.trainer.algo.entropy_control import DomainEntropyCoefficients
from counterpoint.trainer.batch import TrainBatch, UpdatePlan, build_batch, build_sft_batch, plan_update
from counterpoint.trainer.checkpoint import save_checkpoint
from counterpoint.trainer.curriculum.plan import StageKind, StepPlan
from counterpoint.trainer.evaluation import evaluate, last_stage, stage_boundary
from counterpoint.trainer.metrics import (
    PhaseTimer,
    check_reward_failures,
    infrastructure_errors,
    sample_metrics,
)
from counterpoint.trainer.pipeline import PendingStep, RolloutPipeline, due
from counterpoint.trainer.run_folder import RunFolder
from counterpoint.trainer.sampling import engine_options, group_by_sampling

if TYPE_CHECKING:  # the loop reads the config it is given; it never loads or builds one
    from counterpoint.config import CounterpointConfig

log = logging.getLogger(__name__)


class RolloutClient(Protocol):
    def generate(
        self, prompts: list[Prompt], *, samples_per_prompt: int, max_tokens: int, temperature: float, **sampling
    ) -> list[Sample]:
        """`sampling`: top_p, top_k, stop, only when a domain sets them."""
        ...


class RewardClient(Protocol):
    def score(self, samples: list[Sample], diversity: dict | None = None) -> Scoring:
        """Scored samples in input order, reward seconds per domain and, with `diversity`
        (`DiversityConfig.options`), each group's diversity measures per domain."""
        ...


class LearnerClient(Protocol):
    world_size: int

    def train_step(
        self, plan: UpdatePlan, entropy_coefs: torch.Tensor, kind: StageKind, measure_rank: bool = False
    ) -> dict:
        """The update on one batch; returns {"domains": {d: metrics}, "grad_norm": float, ...}.

        `entropy_coefs` (D,): each batch domain's entropy-bonus coefficient; `kind` the objective
        (RL: the domains' policy losses; SFT: supervised NLL on demonstrations); `measure_rank`:
        also each domain's mean hidden-state `effective_rank`, with its cost in `rank_seconds`."""
        ...

    def sync_weights(self, version: int) -> float:
        """Push the current weights to the rollout engines as `version`; returns seconds."""
        ...

    def save_checkpoint(self, directory, client_state: dict) -> None: ...

    def load_checkpoint(self, directory) -> dict:
        """Weights, optimizer and learner-side state back from `save_checkpoint`'s folder."""
        ...

    def weights_digest(self) -> str:
        """A hash of the full weights, to check that two states are the same."""
        ...

    def save_model(self, directory) -> None: ...


class Planner(Protocol):
    """Gives each step's plan (the live schedule) and carries its state in checkpoints."""

    def plan(self, step: int, wait: bool = True) -> StepPlan:
        """`step`'s plan; while the schedule is paused it waits, or (`wait=False`) returns the
        "paused" plan at once."""
        ...

    def preview(self, step: int) -> StepPlan:
        """What `plan(step)` would give now, without recording it or waiting."""
        ...

    def report(self, step: int, record: dict) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict, *, step: int) -> None: ...


@dataclass
class RunParts:
    sources: dict[str, TaskSource]
    rollout: RolloutClient
    rewards: RewardClient
    learner: LearnerClient
    pad_token_id: int
    entropy: DomainEntropyCoefficients
    planner: Planner | None
    """None only until the launcher makes the schedule (after the bwt policy's transfer probes)."""
    encode: Callable[[str, str], tuple[list[int], list[int]]]
    """(prompt, demonstration) -> (prompt ids, response ids ending in EOS), for SFT stages."""
    prompt_tokens: Callable[[Prompt], int] | None = None
    """A prompt's length in tokens as the engine sees it (None: prompts are not measured)."""
    max_model_len: int | None = None
    """The engines' context in tokens: no prompt may reach it."""


@dataclass(frozen=True)
class LoopState:
    """Where the loop stands between steps."""

    step: int
    """Steps trained so far (the next step is `step + 1`)."""
    policy_version: int
    """The version of the weights the engines serve (one per update)."""


@dataclass
class StepBatch:
    """What a batch source hands the update, and what the step's metrics are made of."""

    batch: TrainBatch
    rows: list[ScoredSample]
    """Every sample of the step, in batch row order (those the batch dropped included)."""
    advantages: torch.Tensor | None
    """(len(rows),) advantages; None for demonstrations."""
    reward_seconds: dict[str, float]
    diversity: dict[str, list[dict]]
    """Per domain, each group's diversity measures (none for demonstrations)."""
    diversity_seconds: dict[str, float]


def train(cfg: CounterpointConfig, parts: RunParts, run: RunFolder, resume: dict | None = None) -> dict:
    """Train to `cfg.run.steps`, from scratch or from a checkpoint's driver state (`resume`)."""
    if resume is None:
        random.seed(cfg.run.seed)
        torch.manual_seed(cfg.run.seed)
        state = LoopState(step=0, policy_version=0)
        first_eval = evaluate(cfg, parts, run, state)
    else:
        state = restore_driver_state(parts, resume)
        parts.learner.sync_weights(state.policy_version)  # fresh engines start from the base model
        evals = [r for r in run.read_metrics() if r["kind"] == "eval"]
        first_eval = evals[0] if evals else evaluate(cfg, parts, run, state)
        run.event("resume", step=state.step, policy_version=state.policy_version)
    last_eval = first_eval
    stage = last_stage(run) if resume is not None else None
    pipeline = RolloutPipeline(cfg, parts, BATCH_SOURCES, on_event=run.event)
    try:
        while state.step < cfg.run.steps:
            pending = pipeline.take(state.step + 1, state)
            plan = pending.plan
            if plan.status == "done":
                run.event("schedule_done", step=state.step, reason=plan.reason)
                break
            if stage is not None and plan.stage != stage[0]:
                last_eval = stage_boundary(cfg, parts, run, state, stage, last_eval)
            stage = (plan.stage, [d for d, n in plan.prompts_per_domain.items() if n > 0])
            parts.entropy.set_targets(plan.entropy_targets)
            record, state = finish_step(cfg, parts, state, pending, pipeline)
            run.log_metrics(record)
            parts.planner.report(state.step, record)
            log.info(progress_line(record, cfg.run.steps))
            if state.step < cfg.run.steps and due(state.step, cfg.run.eval_every_steps):
                last_eval = evaluate(cfg, parts, run, state)
            if state.step < cfg.run.steps and due(state.step, cfg.run.checkpoint_every_steps):
                save_checkpoint(run, parts.learner, driver_state(parts, state))
    finally:
        pipeline.close()
    if resume is None or resume["step"] < state.step:
        last_eval = evaluate(cfg, parts, run, state)
    if stage is not None and any(e["event"] == "stage_boundary" for e in run.read_events()):
        stage_boundary(cfg, parts, run, state, stage, last_eval)  # the last stage's row of the transfer matrix
    saved = driver_state(parts, state)
    save_checkpoint(run, parts.learner, saved)
    return {"first_eval": first_eval, "last_eval": last_eval, "policy_version": state.policy_version, "state": saved}


def train_step(cfg: CounterpointConfig, parts: RunParts, state: LoopState, plan: StepPlan) -> tuple[dict, LoopState]:
    """One on-policy step of `plan` from `state`; returns the step's metrics record and the new state."""
    pipeline = RolloutPipeline(cfg, parts, BATCH_SOURCES, max_staleness=0)
    pending = pipeline._draw(state.step + 1, plan)
    pending.made = pipeline._make(pending, state.policy_version)
    return finish_step(cfg, parts, state, pending, pipeline)


def finish_step(
    cfg: CounterpointConfig, parts: RunParts, state: LoopState, pending: PendingStep, pipeline: RolloutPipeline
) -> tuple[dict, LoopState]:
    """Train on `pending`'s batch (waiting for it if it is still being made), push the weights,
    and return the step's metrics record and the new state. The next steps' rollouts are
    launched (`pipeline.fill`) once this batch is in hand, so they generate during the update."""
    plan, timer, skipped = pending.plan, pending.timer, pending.skipped
    started = time.perf_counter()
    if pending.background:
        with timer("wait"):
            step_batch = pending.future.result()
    else:
        step_batch = pending.made
    pipeline.fill(state)
    domains = sample_metrics(step_batch.rows, step_batch.advantages)
    lags = _lags(step_batch.rows, state.policy_version)
    for d, m in domains.items():
        m["prompts_skipped_too_long"] = skipped.get(d, 0)
        m.update(mean_over_groups(step_batch.diversity.get(d, [])))
        m["policy_lag_mean"] = round(sum(lags[d]) / len(lags[d]), 4)
        m["policy_lag_max"] = max(lags[d])
    worst = max((max(v) for v in lags.values()), default=0)
    if worst > pipeline.max_staleness:
        raise RuntimeError(
            f"step {state.step + 1}: a sample is {worst} updates behind the learner, past "
            f"generation.max_staleness={pipeline.max_staleness}"
        )
    # before the update: a batch whose rewards failed on our side is never trained on
    check_reward_failures(domains, cfg.run.max_reward_failure_fraction, step=state.step + 1)
    batch = step_batch.batch.with_lag(state.policy_version)
    update = plan_update(batch, cfg.learner.mini_batches, parts.learner.world_size)
    coefs = parts.entropy.coefs(batch.domains)
    measure_rank = due(state.step + 1, cfg.metrics.effective_rank_every_steps)
    with timer("update"):
        learned = parts.learner.train_step(update, coefs, plan.kind, measure_rank=measure_rank)
    after = LoopState(step=state.step + 1, policy_version=state.policy_version + 1)
    with timer("sync"):
        sync_seconds = parts.learner.sync_weights(after.policy_version)
    for domain, m in domains.items():
        m.update(learned["domains"].get(domain, {}))
        m.update(parts.entropy.metrics(domain))  # the coefficient this step used
        seconds = step_batch.reward_seconds.get(domain, 0.0)
        m["reward_seconds"] = round(seconds, 4)
        spent = step_batch.diversity_seconds.get(domain, {})
        m["diversity_seconds"] = round(spent.get("total", 0.0), 4)  # of which embedding_seconds the encoder's
        m["embedding_seconds"] = round(spent.get("embedding", 0.0), 4)
        # the domain's reward pool: samples scored per second of its slowest worker this step
        m["reward_samples_per_second"] = round(m["samples"] / seconds, 2) if seconds > 0 else None
    parts.entropy.update({d: m["entropy_mean"] for d, m in domains.items() if "entropy_mean" in m})
    # The step's wall time in the loop's thread. A batch made ahead overlapped an earlier update:
    # only the wait for it counts; one made in the loop's thread counts whole.
    step_seconds = time.perf_counter() - started
    if not pending.background:
        step_seconds += sum(timer.seconds.get(k, 0.0) for k in ("plan", "generate", "score", "advantages"))
    record = {
        "kind": "train",
        "update": plan.kind.value,
        "step": after.step,
        "schedule": plan.describe(),
        "policy_version": after.policy_version,
        "rollout_policy_version": min(r.sample.policy_version for r in step_batch.rows),
        "domains": domains,
        "grad_norm": learned.get("grad_norm"),
        "optimizer_steps": learned.get("optimizer_steps"),
        "sequences_trained": len(step_batch.batch),
        "prompts_skipped_too_long": sum(skipped.values()),
        "seconds": {
            **timer.seconds,
            "engine_weight_load": round(sync_seconds, 4),
            # parts of "score" and "update": the measures on the slowest pool, and the effective rank
            "diversity": round(max((t["total"] for t in step_batch.diversity_seconds.values()), default=0.0), 4),
            "effective_rank": round(learned.get("rank_seconds", 0.0), 4),
            "step": round(step_seconds, 4),
        },
        "samples_per_second": round(len(step_batch.rows) / max(step_seconds, 1e-9), 2),
    }
    return record, after


def _lags(rows: list[ScoredSample], learner_version: int) -> dict[str, list[int]]:
    """Per domain, how many updates each sample's policy is behind the learner's."""
    out: dict[str, list[int]] = {}
    for r in rows:
        out.setdefault(r.domain, []).append(learner_version - r.sample.policy_version)
    return out


def rollout_batch(
    cfg: CounterpointConfig, parts: RunParts, drawn: list, step: int, learner_version: int, timer: PhaseTimer
) -> StepBatch:
    """RL: sample a group per prompt from the engines, score it, GRPO-family advantages."""
    gen, adv = cfg.generation, cfg.learner.advantage
    samples = []
    with timer("generate"):  # one engine call per sampling setting (domains.<d>.sampling)
        for key, prompts in group_by_sampling(cfg, [p for p, _ in drawn]).items():
            samples += parts.rollout.generate(
                prompts, samples_per_prompt=gen.samples_per_prompt, temperature=gen.temperature, **engine_options(key)
            )
    with timer("score"):
        scoring = parts.rewards.score(samples, cfg.metrics.diversity.options(evaluation=False, step=step))
    with timer("advantages"):
        batch, rows, advantages = build_batch(
            scoring.scored, parts.pad_token_id, adv.type, drop_uninformative=adv.dynamic_sampling, **adv.params()
        )
    return StepBatch(batch, rows, advantages, scoring.seconds, scoring.diversity, scoring.diversity_seconds)


def demonstration_batch(
    cfg: CounterpointConfig, parts: RunParts, drawn: list, step: int, learner_version: int, timer: PhaseTimer
) -> StepBatch:
    """SFT: the drawn prompts' demonstrations, laid out like rollouts (nothing generated)."""
    with timer("advantages"):
        rows = []
        for prompt, demo in drawn:
            prompt_ids, response_ids = parts.encode(prompt.model_input, demo)
            sample = Sample(
                prompt, prompt_ids, response_ids, [0.0] * len(response_ids), demo, "demonstration", learner_version
            )
            rows.append(ScoredSample(sample, Score(0.0)))
        batch = build_sft_batch(rows, parts.pad_token_id)
    return StepBatch(batch, rows, None, {}, {}, {})


BATCH_SOURCES: dict[StageKind, Callable[..., StepBatch]] = {
    StageKind.RL: rollout_batch,
    StageKind.SFT: demonstration_batch,
}
"""Where each kind of stage gets its batch; the update that follows is the same for all."""


def progress_line(record: dict, steps: int) -> str:
    """One log line per step: per domain the mean reward, accuracy, entropy, the share of distinct
    bigrams within a prompt's group (`D2`) and, when there are any, the rewards that failed on our
    side (`err verifier_timeout=2`); wrong answers are not shown."""
    parts = [f"step {record['step']}/{steps}"]
    for d, m in record["domains"].items():
        acc = f" acc {m['accuracy']:.2f}" if m.get("accuracy") is not None else ""
        errors = "".join(f" {r}={n}" for r, n in infrastructure_errors(m).items())
        errors = f" err{errors}" if errors else ""
        d2 = f" D2 {m['distinct_2']:.2f}" if m.get("distinct_2") is not None else ""
        parts.append(f"{d}: R {m['reward_mean']:.2f}{acc} H {m.get('entropy_mean', float('nan')):.2f}{d2}{errors}")
    parts.append(f"{record['seconds']['step']:.1f}s")
    return " | ".join(parts)


def driver_state(parts: RunParts, state: LoopState) -> dict:
    """What the driver needs, besides the learner, to resume: step, version, cursors, entropy
    controllers, the schedule's state, RNG."""
    return {
        "step": state.step,
        "policy_version": state.policy_version,
        "task_cursors": {d: s.state_dict() for d, s in parts.sources.items()},
        "entropy_controllers": parts.entropy.state_dict(),
        "schedule": parts.planner.state_dict() if parts.planner is not None else None,
        "python_rng": list(random.getstate()[1]),
        "torch_rng": torch.get_rng_state().tolist(),
    }


def restore_driver_state(parts: RunParts, saved: dict) -> LoopState:
    for domain, cursor in saved["task_cursors"].items():
        if domain in parts.sources:
            parts.sources[domain].load_state_dict(cursor)
    parts.entropy.load_state_dict(saved["entropy_controllers"])
    if parts.planner is not None and saved.get("schedule"):  # (no planner yet while transfer probes run)
        parts.planner.load_state_dict(saved["schedule"], step=saved["step"])
    random.setstate((3, tuple(saved["python_rng"]), None))
    torch.set_rng_state(torch.tensor(saved["torch_rng"], dtype=torch.uint8))
    return LoopState(step=saved["step"], policy_version=saved["policy_version"])

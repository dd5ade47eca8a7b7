"""The RL loop: plan → generate → score → advantages → update → weight sync → metrics.

Written against three small interfaces (a rollout client, a reward client, a learner client), so
the same loop drives Ray actors in production and in-process parts in a unit test.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from counterpoint.rollout.records import Prompt, Sample, Score, ScoredSample
from counterpoint.rollout.tasks import TaskSource
from counterpoint.trainer.batch import UpdatePlan, build_batch, build_sft_batch, plan_update
from counterpoint.trainer.checkpoint import save_checkpoint
from counterpoint.trainer.planning import StepPlan
from counterpoint.trainer.entropy_control import DomainEntropyCoefficients
from counterpoint.trainer.metrics import PhaseTimer, sample_metrics
from counterpoint.trainer.run_folder import RunFolder

log = logging.getLogger(__name__)


class RolloutClient(Protocol):
    def generate(self, prompts: list[Prompt], *, samples_per_prompt: int, max_tokens: int, temperature: float) -> list[Sample]: ...


class RewardClient(Protocol):
    def score(self, samples: list[Sample]) -> tuple[list[ScoredSample], dict[str, float]]:
        """Scored samples in input order, and reward seconds per domain."""
        ...


class LearnerClient(Protocol):
    world_size: int

    def train_step(self, plan: UpdatePlan, entropy_coefs: torch.Tensor, kind: str = "rl") -> dict:
        """The update on one batch; returns {"domains": {d: metrics}, "grad_norm": float}.

        `entropy_coefs` (D,): each batch domain's entropy-bonus coefficient; `kind` "rl" (the
        policy losses) or "sft" (supervised NLL on demonstrations)."""
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
    """Decides each step's prompts per domain (a fixed split, or the live schedule)."""

    def plan(self, step: int) -> StepPlan: ...

    def report(self, step: int, record: dict) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class RunParts:
    sources: dict[str, TaskSource]
    rollout: RolloutClient
    rewards: RewardClient
    learner: LearnerClient
    pad_token_id: int
    entropy: DomainEntropyCoefficients
    planner: "Planner | None"
    """None only until the launcher makes the schedule (after the bwt policy's transfer probes)."""
    encode: Callable[[str, str], tuple[list[int], list[int]]]
    """(prompt, demonstration) -> (prompt ids, response ids ending in EOS), for SFT stages."""


@dataclass
class LoopSettings:
    """What the loop needs from the config, as plain values."""

    steps: int
    samples_per_prompt: int
    max_response_tokens: int
    temperature: float
    advantage: str
    advantage_params: dict
    dynamic_sampling: bool
    mini_batches: int
    eval_every_steps: int
    checkpoint_every_steps: int
    seed: int
    eval_sampling: dict = field(default_factory=dict)
    """domain -> (samples per prompt, temperature) on the held-out split; default (1, 0.0)."""


def train(settings: LoopSettings, parts: RunParts, run: RunFolder, resume: dict | None = None) -> dict:
    """Train to `settings.steps`, from scratch or from a checkpoint's driver state (`resume`)."""
    if resume is None:
        random.seed(settings.seed)
        torch.manual_seed(settings.seed)
        step, policy_version = 0, 0
        first_eval = evaluate(settings, parts, run, step=0, policy_version=0)
    else:
        step, policy_version = restore_driver_state(parts, resume)
        parts.learner.sync_weights(policy_version)  # fresh engines start from the base model
        evals = [r for r in run.read_metrics() if r["kind"] == "eval"]
        first_eval = evals[0] if evals else evaluate(settings, parts, run, step=step, policy_version=policy_version)
        run.event("resume", step=step, policy_version=policy_version)
    last_eval = first_eval
    while step < settings.steps:
        plan = parts.planner.plan(step + 1)  # steps are numbered from 1, as in metrics.jsonl
        if plan.extra.get("done"):
            run.event("schedule_done", step=step, reason=plan.extra.get("reason", ""))
            break
        parts.entropy.set_targets(plan.extra.get("entropy_targets", {}))
        record = train_step(settings, parts, step, policy_version, plan)
        step, policy_version = record["step"], record["policy_version"]
        run.log_metrics(record)
        parts.planner.report(step, record)
        log.info(progress_line(record, settings.steps))
        if step < settings.steps and _due(step, settings.eval_every_steps):
            last_eval = evaluate(settings, parts, run, step=step, policy_version=policy_version)
        if step < settings.steps and _due(step, settings.checkpoint_every_steps):
            save_checkpoint(run, parts.learner, driver_state(parts, step, policy_version))
    if resume is None or resume["step"] < step:
        last_eval = evaluate(settings, parts, run, step=step, policy_version=policy_version)
    state = driver_state(parts, step, policy_version)
    save_checkpoint(run, parts.learner, state)
    return {"first_eval": first_eval, "last_eval": last_eval, "policy_version": policy_version, "state": state}


def _due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def train_step(settings: LoopSettings, parts: RunParts, step: int, policy_version: int, plan: StepPlan) -> dict:
    timer = PhaseTimer()
    sft = plan.extra.get("kind") == "sft"
    with timer("plan"):
        drawn = [item for d, n in plan.prompts_per_domain.items() if n for item in parts.sources[d].next_batch(n)]
    if sft:  # an SFT stage: supervised steps on the domains' demonstrations
        with timer("advantages"):
            rows = [ScoredSample(_demonstration(parts, p, demo, policy_version), Score(0.0)) for p, demo in drawn]
            batch, advantages, reward_seconds = build_sft_batch(rows, parts.pad_token_id), None, {}
            samples = [r.sample for r in rows]
    else:
        with timer("generate"):
            samples = parts.rollout.generate(
                [p for p, _ in drawn],
                samples_per_prompt=settings.samples_per_prompt,
                max_tokens=settings.max_response_tokens,
                temperature=settings.temperature,
            )
        with timer("score"):
            scored, reward_seconds = parts.rewards.score(samples)
        with timer("advantages"):
            batch, rows, advantages = build_batch(scored, parts.pad_token_id, settings.advantage,
                                                  drop_uninformative=settings.dynamic_sampling, **settings.advantage_params)
    update = plan_update(batch, settings.mini_batches, parts.learner.world_size)
    coefs = parts.entropy.coefs(batch.domains)
    with timer("update"):
        learned = parts.learner.train_step(update, coefs, kind="sft" if sft else "rl")
    with timer("sync"):
        policy_version += 1
        sync_seconds = parts.learner.sync_weights(policy_version)
    domains = sample_metrics(rows, advantages)
    for domain, m in domains.items():
        m.update(learned["domains"].get(domain, {}))
        m.update(parts.entropy.metrics(domain))  # the coefficient this step used
        m["reward_seconds"] = round(reward_seconds.get(domain, 0.0), 4)
        # the domain's reward pool: samples scored per second of its slowest worker this step
        m["reward_samples_per_second"] = round(m["samples"] / m["reward_seconds"], 2) if m["reward_seconds"] > 0 else None
    parts.entropy.update({d: m["entropy_mean"] for d, m in domains.items() if "entropy_mean" in m})
    return {
        "kind": "train",
        "update": "sft" if sft else "rl",
        "step": step + 1,
        "schedule": plan.describe(),
        "policy_version": policy_version,
        "rollout_policy_version": min(s.policy_version for s in samples),
        "domains": domains,
        "grad_norm": learned.get("grad_norm"),
        "optimizer_steps": learned.get("optimizer_steps"),
        "sequences_trained": len(batch),
        "seconds": {**timer.seconds, "engine_weight_load": round(sync_seconds, 4), "step": round(sum(timer.seconds.values()), 4)},
        "samples_per_second": round(len(samples) / max(sum(timer.seconds.values()), 1e-9), 2),
    }


def _demonstration(parts: RunParts, prompt: Prompt, demo: str, policy_version: int) -> Sample:
    prompt_ids, response_ids = parts.encode(prompt.text, demo)
    return Sample(prompt, prompt_ids, response_ids, [0.0] * len(response_ids), demo, "demonstration", policy_version)


def evaluate(settings: LoopSettings, parts: RunParts, run: RunFolder, *, step: int, policy_version: int) -> dict:
    """Every domain's held-out split, decoded as its config says (greedy by default; open-ended
    domains sample a group, since novelty needs one); logs and returns per-domain figures."""
    record = eval_record(settings, parts, list(parts.sources), step=step, policy_version=policy_version)
    run.log_metrics(record)
    run.event("eval", step=step, domains={d: _headline(m) for d, m in record["domains"].items()})
    log.info("eval @ step %d: %s", step, "  ".join(f"{d} {_headline(m)}" for d, m in record["domains"].items()))
    return record


def eval_record(settings: LoopSettings, parts: RunParts, domains: list[str], *, step: int, policy_version: int) -> dict:
    """The held-out figures of `domains` now, as a metrics record (not logged)."""
    timer = PhaseTimer()
    by_sampling: dict[tuple[int, float], list[Prompt]] = {}
    for domain in domains:
        key = settings.eval_sampling.get(domain, (1, 0.0))
        by_sampling.setdefault(key, []).extend(parts.sources[domain].eval_prompts())
    samples = []
    with timer("generate"):
        for (n, temperature), prompts in by_sampling.items():
            samples += parts.rollout.generate(prompts, samples_per_prompt=n, max_tokens=settings.max_response_tokens,
                                              temperature=temperature)
    with timer("score"):
        scored, _ = parts.rewards.score(samples)
    return {"kind": "eval", "step": step, "policy_version": policy_version, "domains": sample_metrics(scored), "seconds": timer.seconds}


def _headline(m: dict) -> str:
    if m.get("accuracy") is not None:
        return f"acc {m['accuracy']:.3f}"
    return f"reward {m['reward_mean']:.3f}"


def progress_line(record: dict, steps: int) -> str:
    parts = [f"step {record['step']}/{steps}"]
    for d, m in record["domains"].items():
        acc = f" acc {m['accuracy']:.2f}" if m.get("accuracy") is not None else ""
        parts.append(f"{d}: R {m['reward_mean']:.2f}{acc} H {m.get('entropy_mean', float('nan')):.2f}")
    parts.append(f"{record['seconds']['step']:.1f}s")
    return " | ".join(parts)


def driver_state(parts: RunParts, step: int, policy_version: int) -> dict:
    """What the driver needs, besides the learner, to resume: step, version, cursors, RNG."""
    return {
        "step": step,
        "policy_version": policy_version,
        "task_cursors": {d: s.state_dict() for d, s in parts.sources.items()},
        "entropy_controllers": parts.entropy.state_dict(),
        "planner": parts.planner.state_dict() if parts.planner is not None else {},
        "python_rng": list(random.getstate()[1]),
        "torch_rng": torch.get_rng_state().tolist(),
    }


def restore_driver_state(parts: RunParts, state: dict) -> tuple[int, int]:
    for domain, cursor in state["task_cursors"].items():
        if domain in parts.sources:
            parts.sources[domain].load_state_dict(cursor)
    parts.entropy.load_state_dict(state["entropy_controllers"])
    if parts.planner is not None:  # (none yet while transfer probes run)
        parts.planner.load_state_dict(state.get("planner", {}))
    random.setstate((3, tuple(state["python_rng"]), None))
    torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
    return state["step"], state["policy_version"]

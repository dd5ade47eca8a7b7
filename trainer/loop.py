"""The RL loop: plan → generate → score → advantages → update → weight sync → metrics.

Written against three small interfaces (a rollout client, a reward client, a learner client), so
the same loop drives Ray actors in production and in-process parts in a unit test.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Protocol

import torch

from counterpoint.rollout.records import Prompt, Sample, ScoredSample
from counterpoint.rollout.tasks import TaskSource
from counterpoint.trainer.batch import UpdatePlan, build_batch, plan_update
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

    def train_step(self, plan: UpdatePlan, entropy_coefs: torch.Tensor) -> dict:
        """The update on one rollout batch; returns {"domains": {d: metrics}, "grad_norm": float}.

        `entropy_coefs` (D,): each batch domain's entropy-bonus coefficient."""
        ...

    def sync_weights(self, version: int) -> float:
        """Push the current weights to the rollout engines as `version`; returns seconds."""
        ...

    def save_checkpoint(self, directory, client_state: dict) -> None: ...

    def save_model(self, directory) -> None: ...


@dataclass
class RunParts:
    sources: dict[str, TaskSource]
    rollout: RolloutClient
    rewards: RewardClient
    learner: LearnerClient
    pad_token_id: int
    entropy: DomainEntropyCoefficients


@dataclass
class LoopSettings:
    """What the loop needs from the config, as plain values."""

    steps: int
    prompts_per_domain: dict[str, int]
    samples_per_prompt: int
    max_response_tokens: int
    temperature: float
    advantage: str
    advantage_params: dict
    dynamic_sampling: bool
    mini_batches: int
    eval_every_steps: int
    seed: int


def train(settings: LoopSettings, parts: RunParts, run: RunFolder, start_step: int = 0, policy_version: int = 0) -> dict:
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    first_eval = evaluate(settings, parts, run, step=start_step, policy_version=policy_version)
    last_eval = first_eval
    for step in range(start_step, settings.steps):
        record = train_step(settings, parts, step, policy_version)
        policy_version = record["policy_version"]
        run.log_metrics(record)
        log.info(progress_line(record, settings.steps))
        if settings.eval_every_steps and (step + 1) % settings.eval_every_steps == 0 and step + 1 < settings.steps:
            last_eval = evaluate(settings, parts, run, step=step + 1, policy_version=policy_version)
    if settings.steps > start_step:
        last_eval = evaluate(settings, parts, run, step=settings.steps, policy_version=policy_version)
    state = driver_state(settings, parts, settings.steps, policy_version)
    return {"first_eval": first_eval, "last_eval": last_eval, "policy_version": policy_version, "state": state}


def train_step(settings: LoopSettings, parts: RunParts, step: int, policy_version: int) -> dict:
    timer = PhaseTimer()
    with timer("plan"):
        prompts = [p for d, n in settings.prompts_per_domain.items() if n for p, _ in parts.sources[d].next_batch(n)]
    with timer("generate"):
        samples = parts.rollout.generate(
            prompts,
            samples_per_prompt=settings.samples_per_prompt,
            max_tokens=settings.max_response_tokens,
            temperature=settings.temperature,
        )
    with timer("score"):
        scored, reward_seconds = parts.rewards.score(samples)
    with timer("advantages"):
        batch, rows, advantages = build_batch(scored, parts.pad_token_id, settings.advantage,
                                              drop_uninformative=settings.dynamic_sampling, **settings.advantage_params)
        plan = plan_update(batch, settings.mini_batches, parts.learner.world_size)
        coefs = parts.entropy.coefs(batch.domains)
    with timer("update"):
        learned = parts.learner.train_step(plan, coefs)
    with timer("sync"):
        policy_version += 1
        sync_seconds = parts.learner.sync_weights(policy_version)
    domains = sample_metrics(rows, advantages)
    for domain, m in domains.items():
        m.update(learned["domains"].get(domain, {}))
        m.update(parts.entropy.metrics(domain))  # the coefficient this step used
        m["reward_seconds"] = round(reward_seconds.get(domain, 0.0), 4)
    parts.entropy.update({d: m["entropy_mean"] for d, m in domains.items() if "entropy_mean" in m})
    return {
        "kind": "train",
        "step": step + 1,
        "policy_version": policy_version,
        "rollout_policy_version": min(s.policy_version for s in samples),
        "domains": domains,
        "grad_norm": learned.get("grad_norm"),
        "optimizer_steps": learned.get("optimizer_steps"),
        "sequences_trained": len(batch),
        "seconds": {**timer.seconds, "engine_weight_load": round(sync_seconds, 4), "step": round(sum(timer.seconds.values()), 4)},
        "samples_per_second": round(len(samples) / max(sum(timer.seconds.values()), 1e-9), 2),
    }


def evaluate(settings: LoopSettings, parts: RunParts, run: RunFolder, *, step: int, policy_version: int) -> dict:
    """Greedy decoding on every domain's held-out split; logs and returns per-domain figures."""
    timer = PhaseTimer()
    prompts = [p for d in settings.prompts_per_domain for p in parts.sources[d].eval_prompts()]
    with timer("generate"):
        samples = parts.rollout.generate(prompts, samples_per_prompt=1, max_tokens=settings.max_response_tokens, temperature=0.0)
    with timer("score"):
        scored, _ = parts.rewards.score(samples)
    record = {"kind": "eval", "step": step, "policy_version": policy_version, "domains": sample_metrics(scored), "seconds": timer.seconds}
    run.log_metrics(record)
    run.event("eval", step=step, domains={d: _headline(m) for d, m in record["domains"].items()})
    log.info("eval @ step %d: %s", step, "  ".join(f"{d} {_headline(m)}" for d, m in record["domains"].items()))
    return record


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


def driver_state(settings: LoopSettings, parts: RunParts, step: int, policy_version: int) -> dict:
    """What the driver needs, besides the learner, to resume: step, version, cursors, RNG."""
    return {
        "step": step,
        "policy_version": policy_version,
        "task_cursors": {d: s.state_dict() for d, s in parts.sources.items()},
        "entropy_controllers": parts.entropy.state_dict(),
        "python_rng": repr(random.getstate()),
        "torch_rng": torch.get_rng_state().tolist(),
    }

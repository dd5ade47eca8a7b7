"""Per-domain step metrics from scored samples and the learner's per-domain sums, and the check
that stops a run whose rewards failed on our side. Pure.

The names of every per-domain metric are declared once, in `trainer/curriculum/metric_names.py`
(`DOMAIN_METRICS`, re-exported here), where the advance rules' validation reads them.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from contextlib import contextmanager

import torch

from counterpoint.rollout.records import INFRASTRUCTURE_ERRORS, RewardError, ScoredSample
from counterpoint.rollout.rewards.parts import part_metrics
from counterpoint.trainer.analysis import pass_at_k_table
from counterpoint.trainer.batch import group_by_prompt
from counterpoint.trainer.curriculum.metric_names import DOMAIN_METRICS

__all__ = [
    "DOMAIN_METRICS",
    "PhaseTimer",
    "RewardFailure",
    "check_reward_failures",
    "infrastructure_errors",
    "merge_learner_sums",
    "pass_at_k_metrics",
    "sample_metrics",
]


class PhaseTimer:
    """Wall time of each named phase of a step: `with timer("generate"): ...`."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + time.perf_counter() - started, 4)


def sample_metrics(rows: list[ScoredSample], advantages: torch.Tensor | None = None) -> dict[str, dict]:
    """Reward, accuracy, response length and sample count per domain; `reward_errors`, the count
    of each `RewardError` among the domain's samples (policy failures included), and
    `reward_failure_fraction`, the share of its samples whose reward failed on our side."""
    by_domain: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(rows):
        by_domain[s.domain].append(i)
    out = {}
    for domain, idx in sorted(by_domain.items()):
        rewards = torch.tensor([rows[i].score.reward for i in idx])
        correct = [rows[i].score.correct for i in idx if rows[i].score.correct is not None]
        m = {
            "samples": len(idx),
            "reward_mean": float(rewards.mean()),
            "reward_std": float(rewards.std(unbiased=False)),
            "accuracy": sum(correct) / len(correct) if correct else None,
            "response_length_mean": sum(len(rows[i].sample.response_token_ids) for i in idx) / len(idx),
            "reward_errors": dict(
                sorted(Counter(str(rows[i].score.error) for i in idx if rows[i].score.error is not None).items())
            ),
            "reward_failure_fraction": sum(rows[i].score.infrastructure_failure for i in idx) / len(idx),
        }
        m.update(part_metrics(rows[i].score for i in idx))  # creative: reward_<part>_mean, fluency_failed_fraction
        if advantages is not None:
            m["advantage_abs_mean"] = float(advantages[idx].abs().mean())
            groups = group_by_prompt([rows[i] for i in idx])
            m["zero_variance_group_fraction"] = sum(len({s.score.reward for s in g}) == 1 for g in groups) / len(groups)
        out[domain] = m
    return out


def pass_at_k_metrics(rows: list[ScoredSample]) -> dict[str, float]:
    """pass@k of one domain's evaluation samples (unbiased, per prompt, averaged; k = 1, 2, 4, ...
    up to the samples per prompt), where the domain checks correctness (math, code); else {}."""
    groups = group_by_prompt(rows)
    counts = [(len(g), sum(bool(s.score.correct) for s in g)) for g in groups if g[0].score.correct is not None]
    return pass_at_k_table(counts) if counts else {}


def merge_learner_sums(per_rank: list[dict]) -> dict:
    """Combine every rank's per-domain sums (`objective.SUM_KEYS`) into per-domain figures."""
    from counterpoint.trainer.algo.objective import merge_sums

    totals: dict[str, dict[str, float]] = {}
    for result in per_rank:
        merge_sums(totals, result["domains"])
    out = {}
    for domain, t in totals.items():
        n = max(t["tokens"], 1.0)
        out[domain] = {
            "tokens": int(t["tokens"]),
            "entropy_mean": t["entropy_sum"] / n,
            "cov_logp_adv_mean": t["cov_sum"] / n,
            "clip_fraction": t["clipped_sum"] / n,
            "dual_clip_fraction": t["dual_clipped_sum"] / n,
            "cov_selected_tokens": int(t["selected_sum"]),
            "gppo_preserved_tokens": int(t["preserved_sum"]),
            "kl_old": t["kl_old_sum"] / n,
            "kl_ref": t["ref_kl_sum"] / n,
            "logprob_mismatch_mean": t["mismatch_sum"] / n,
            "logprob_mismatch_max": t["mismatch_max"],
            "loss_token_mean": t["loss_sum"] / n,
        }
        if t["stale_tokens"]:  # rows an older policy generated (generation.max_staleness > 0)
            out[domain]["stale_token_fraction"] = t["stale_tokens"] / n
            out[domain]["is_weight_mean"] = t["is_weight_sum"] / t["stale_tokens"]
            out[domain]["is_truncated_fraction"] = t["is_truncated_sum"] / t["stale_tokens"]
        if t["rank_count"]:  # measured this step (metrics.effective_rank_every_steps)
            out[domain]["effective_rank"] = t["rank_sum"] / t["rank_count"]
    return out


def infrastructure_errors(domain_metrics: Mapping) -> dict[str, int]:
    """The infrastructure reasons (`INFRASTRUCTURE_ERRORS`) of one domain's `reward_errors`."""
    return {r: n for r, n in domain_metrics.get("reward_errors", {}).items() if r in INFRASTRUCTURE_ERRORS and n}


WHAT_TO_CHECK = {
    RewardError.VERIFIER_TIMEOUT: "math-verify ran past its deadline: a loaded host, or answers too heavy to "
    "check (domains.<name>.reward.timeout_seconds, wall_factor)",
    RewardError.VERIFIER_CRASH: "math-verify raised or its child died: its install, or its memory limit "
    "(domains.<name>.reward.memory_mib)",
    RewardError.GOLD_UNPARSABLE: "the suite's gold answers do not parse under math-verify: the task data",
    RewardError.HARNESS_FAILURE: "the code sandbox failed before judging the program: bubblewrap, "
    "/usr/bin/python3, the test harness (the scores' info detail says what)",
    RewardError.JUDGE_UNPARSABLE: "the judge's replies hold no score in range: its model, prompt and "
    "max_tokens (domains.<name>.reward.judge)",
    RewardError.PLUGIN_ERROR: "the reward function raised or returned no float: its traceback is in the "
    "scores' info (domains.<name>.reward.function)",
    RewardError.PLUGIN_TIMEOUT: "the reward function ran past its deadline (domains.<name>.reward.timeout_seconds)",
}
"""What an operator should look at, per infrastructure reason."""


class RewardFailure(RuntimeError):
    """A step whose rewards failed on our side (verifier, sandbox harness, judge, task data) for
    more than `run.max_reward_failure_fraction` of a domain's samples. Raised before the update,
    so the run stops instead of training on rewards that say nothing about the responses."""

    def __init__(self, step: int, failures: Mapping[str, tuple[float, Mapping[str, int]]], bound: float):
        self.step, self.failures, self.bound = step, dict(failures), bound
        lines = []
        for domain, (share, reasons) in self.failures.items():
            counted = " ".join(f"{r}={n}" for r, n in reasons.items())
            lines.append(f"  {domain}: {share:.0%} of its samples ({counted})")
            for reason in reasons:
                lines.append(f"    {reason}: {WHAT_TO_CHECK[RewardError(reason)].replace('<name>', domain)}")
        super().__init__(
            f"step {step}: rewards failed on our side for more than run.max_reward_failure_fraction={bound:g} "
            "of a domain's samples, so the step was not trained on:\n" + "\n".join(lines) + "\n"
            "Fix the cause (the reward workers' logs help), or raise run.max_reward_failure_fraction "
            "to train on these rewards anyway; the run resumes from its last checkpoint with --resume."
        )

    def __reduce__(self):  # pickle by the constructor's arguments
        return type(self), (self.step, self.failures, self.bound)


def check_reward_failures(domains: Mapping[str, Mapping], bound: float, step: int) -> None:
    """Raise `RewardFailure` if a domain's `reward_failure_fraction` is above `bound`."""
    over = {
        d: (m["reward_failure_fraction"], infrastructure_errors(m))
        for d, m in domains.items()
        if m.get("reward_failure_fraction", 0.0) > bound
    }
    if over:
        raise RewardFailure(step, over, bound)

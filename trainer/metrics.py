"""Per-domain step metrics from scored samples and the learner's per-domain sums. Pure."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch

from counterpoint.rollout.records import ScoredSample
from counterpoint.trainer.batch import group_by_prompt


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
    """Reward, accuracy, response length and sample count per domain."""
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
        }
        if advantages is not None:
            m["advantage_abs_mean"] = float(advantages[idx].abs().mean())
            groups = group_by_prompt([rows[i] for i in idx])
            m["zero_variance_group_fraction"] = sum(
                len({s.score.reward for s in g}) == 1 for g in groups
            ) / len(groups)
        out[domain] = m
    return out


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
    return out

"""The learner's objective for one micro-batch: per-domain policy losses, entropy bonus,
optional reference KL, aggregation. Pure: torch only, so it is tested without DeepSpeed.

Each domain may have its own loss (e.g. clip-higher PPO on math, KL-Cov on creative): the loss
runs on that domain's rows alone, so covariance-based token selection ranks a domain's tokens
against each other, never against another domain's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from counterpoint.trainer.algo.aggregation import aggregate, aggregate_per_domain
from counterpoint.trainer.algo.covariance import token_covariance
from counterpoint.trainer.algo.entropy_control import entropy_bonus
from counterpoint.trainer.algo.losses import get_policy_loss, kl_k3
from counterpoint.trainer.algo.off_policy import BehaviourWeights
from counterpoint.trainer.batch import TrainBatch

SUM_KEYS = (
    "tokens",
    "entropy_sum",
    "cov_sum",
    "clipped_sum",
    "dual_clipped_sum",
    "selected_sum",
    "preserved_sum",
    "kl_old_sum",
    "ref_kl_sum",
    "mismatch_sum",
    "mismatch_max",
    "loss_sum",
    "rank_sum",
    "rank_count",
    "stale_tokens",
    "is_weight_sum",
    "is_truncated_sum",
)
"""Per-domain sums of a micro-batch; `rank_*` only on the steps the effective rank is measured;
`stale_tokens`, `is_*` over the response tokens of rows an older policy generated
(`off_policy.py`)."""


@dataclass(frozen=True)
class DomainLoss:
    """A policy loss by registry name with its explicit scalars, e.g. ("ppo_clip", {...})."""

    name: str
    scalars: dict = field(default_factory=dict)


@dataclass
class ObjectiveSettings:
    losses: dict[str, DomainLoss]
    """Domain name → its loss."""
    aggregation: str
    domain_normalisation: bool
    norm_constant: float
    """Dr. GRPO's C for seq-mean-token-sum-norm: the max response length."""
    reference_kl_coef: float = 0.0


def objective(
    logp: torch.Tensor,
    entropy: torch.Tensor,
    mb: TrainBatch,
    logp_old: torch.Tensor,
    *,
    settings: ObjectiveSettings,
    counts: tuple[torch.Tensor, torch.Tensor],
    entropy_coefs: torch.Tensor,
    generator: torch.Generator | None = None,
    logp_ref: torch.Tensor | None = None,
    behaviour: BehaviourWeights | None = None,
) -> tuple[torch.Tensor, dict[str, dict[str, float]]]:
    """Scalar loss of this micro-batch (summing over micro-batches and ranks gives the global
    objective) and per-domain metric sums.

    logp, entropy, logp_old, logp_ref: (B, T) aligned with `mb.response_mask`.
    counts: (tokens (D,), sequences (D,)) of the whole optimizer mini-batch over every rank, by
    domain id. entropy_coefs: (D,) the entropy bonus coefficient of each domain.
    """
    mask = mb.response_mask
    adv = mb.advantages[:, None].expand_as(logp)
    per_token = torch.zeros_like(logp)
    flags = {k: torch.zeros_like(mask, dtype=torch.bool) for k in ("clipped", "dual_clipped", "selected", "preserved")}
    cov = torch.zeros_like(logp)
    for d, name in enumerate(mb.domains):
        rows = mb.domain_ids == d
        if not bool(rows.any()):
            continue
        spec = settings.losses[name]
        out = get_policy_loss(spec.name)(
            logp[rows], logp_old[rows], adv[rows], mask=mask[rows], generator=generator, **spec.scalars
        )
        per_token[rows] = out.loss
        for key, value in out.flags().items():
            flags[key][rows] = value
        cov[rows] = token_covariance(logp[rows].detach(), adv[rows], mask[rows])
    if behaviour is not None:
        per_token = per_token * behaviour.weights
    per_token = per_token + entropy_bonus(entropy, entropy_coefs[mb.domain_ids])
    ref_kl = None
    if logp_ref is not None and settings.reference_kl_coef > 0:
        ref_kl = kl_k3(logp, logp_ref)
        per_token = per_token + settings.reference_kl_coef * ref_kl
    tokens, sequences = counts
    if settings.domain_normalisation:
        loss = aggregate_per_domain(
            per_token,
            mask,
            mb.domain_ids,
            torch.ones(len(mb.domains)),
            settings.aggregation,
            num_tokens=tokens,
            num_sequences=sequences,
            norm_constant=settings.norm_constant,
        )
    else:
        loss = aggregate(
            per_token,
            mask,
            settings.aggregation,
            num_tokens=tokens.sum(),
            num_sequences=sequences.sum(),
            norm_constant=settings.norm_constant,
        )
    sums = _domain_sums(
        mb, mask, entropy.detach(), cov, flags, logp.detach(), logp_old, per_token.detach(), ref_kl, behaviour
    )
    return loss, sums


def _domain_sums(
    mb, mask, entropy, cov, flags, logp, logp_old, per_token, ref_kl, behaviour
) -> dict[str, dict[str, float]]:
    mismatch = (logp - mb.engine_logprobs).abs() * mask
    out = {}
    for d, name in enumerate(mb.domains):
        rows = mb.domain_ids == d
        if not bool(rows.any()):
            continue
        m = mask[rows]

        def total(x: torch.Tensor, rows: torch.Tensor = rows, m: torch.Tensor = m) -> float:
            return float((x[rows].float() * m).sum())

        out[name] = {
            "tokens": float(m.sum()),
            "entropy_sum": total(entropy),
            "cov_sum": total(cov),
            "clipped_sum": total(flags["clipped"]),
            "dual_clipped_sum": total(flags["dual_clipped"]),
            "selected_sum": total(flags["selected"]),
            "preserved_sum": total(flags["preserved"]),
            "kl_old_sum": total(logp_old - logp),  # k1 estimate of KL(old || new) on old samples
            "ref_kl_sum": total(ref_kl.detach()) if ref_kl is not None else 0.0,
            "mismatch_sum": float(mismatch[rows].sum()),
            "mismatch_max": float(mismatch[rows].max()),
            "loss_sum": total(per_token),
        }
        if behaviour is not None:
            stale = behaviour.stale[rows]
            out[name]["stale_tokens"] = float(stale.sum())
            out[name]["is_weight_sum"] = float((behaviour.raw[rows] * stale).sum())
            out[name]["is_truncated_sum"] = float(behaviour.truncated[rows].sum())
    return out


def merge_sums(into: dict[str, dict[str, float]], more: dict[str, dict[str, float]]) -> None:
    for name, sums in more.items():
        target = into.setdefault(name, dict.fromkeys(SUM_KEYS, 0.0))
        for key, value in sums.items():
            target[key] = max(target[key], value) if key.endswith("_max") else target[key] + value

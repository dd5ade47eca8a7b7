"""Policy-gradient losses. Pure: torch only, explicit scalars, per-token outputs.

Every loss returns the per-token loss (B, T) and per-token diagnostics; aggregation over tokens
is a separate step (`aggregation.py`), so losses and aggregation modes combine freely.

Losses are chosen by name: `get_policy_loss(name)` returns a function called as
`fn(logp, logp_old, advantages, mask=mask, **scalars)`; the scalars are the loss's own keyword
arguments (clip bounds, fractions, a generator), never a config object. Published defaults are
in each docstring and belong in the config, not in these signatures.

Notation (docs/research.md section 3): all tensors (B, T); r = exp(logp - logp_old); A the response's
advantage repeated over its tokens; mask 1 on valid response tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from counterpoint.trainer.algo.covariance import token_covariance
from counterpoint.trainer.algo.registry import Registry


@dataclass
class PolicyLossOutput:
    loss: torch.Tensor
    """(B, T) per-token loss, not yet masked or aggregated."""
    clipped: torch.Tensor
    """(B, T) bool: the token's gradient was zeroed by a clip (the PPO clip or the dual clip)."""
    ratio: torch.Tensor
    """(B, T) r = exp(logp - logp_old)."""
    dual_clipped: torch.Tensor | None = None
    """(B, T) bool: A < 0 and the loss was capped at -A * c by the dual clip (also in `clipped`)."""
    selected: torch.Tensor | None = None
    """(B, T) bool: tokens picked by a covariance control (Clip-Cov: gradient cut; KL-Cov: penalised)."""
    preserved: torch.Tensor | None = None
    """(B, T) bool: GPPO tokens at a clip bound whose gradient PPO would have zeroed, kept here."""

    def __post_init__(self) -> None:
        for name in ("dual_clipped", "selected", "preserved"):
            if getattr(self, name) is None:
                setattr(self, name, torch.zeros_like(self.clipped, dtype=torch.bool))

    def flags(self) -> dict[str, torch.Tensor]:
        """The per-token diagnostic masks by name, e.g. to sum per domain for metrics."""
        return {
            "clipped": self.clipped,
            "dual_clipped": self.dual_clipped,
            "selected": self.selected,
            "preserved": self.preserved,
        }


PolicyLossFn = Callable[..., PolicyLossOutput]
POLICY_LOSSES: Registry[PolicyLossFn] = Registry("policy loss")
"""Loss name → fn(logp, logp_old, advantages, *, mask, generator, **scalars) -> PolicyLossOutput."""
register_policy_loss = POLICY_LOSSES.register
get_policy_loss = POLICY_LOSSES.lookup


def _dual_clip(
    loss: torch.Tensor, advantages: torch.Tensor, dual_clip: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual clip (Ye et al., arXiv 1912.09729): for A < 0, loss = min(loss, -A * c), c > 1."""
    if dual_clip is None:
        return loss, torch.zeros_like(advantages, dtype=torch.bool)
    if not dual_clip > 1.0:
        raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
    cap = -advantages * dual_clip
    capped = (advantages < 0) & (loss > cap)
    return torch.where(capped, cap, loss), capped


@register_policy_loss("ppo_clip")
def ppo_clip_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float,
    *,
    dual_clip: float | None = None,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,  # every registered loss takes it; only Clip-Cov draws
) -> PolicyLossOutput:
    """PPO-clip with decoupled bounds ("clip-higher", DAPO arXiv 2503.14476), optional dual clip.

    l = max(-A * r, -A * clip(r, 1 - clip_low, 1 + clip_high)); with `dual_clip` c, for A < 0
    l = min(l, -A * c) (arXiv 1912.09729), which bounds the loss of a negative-advantage token
    whose ratio ran away. All inputs (B, T). DAPO defaults clip_low 0.2, clip_high 0.28; c 3..10.
    With clip_low == clip_high this is the original PPO objective (arXiv 1707.06347). `mask` is
    accepted for the registry's uniform call and not used: every token gets its loss.
    """
    ratio = torch.exp(logp - logp_old)
    unclipped = -advantages * ratio
    clipped_obj = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped_obj)
    loss, dual = _dual_clip(loss, advantages, dual_clip)
    return PolicyLossOutput(loss=loss, clipped=(clipped_obj > unclipped) | dual, ratio=ratio, dual_clipped=dual)


@register_policy_loss("gppo")
def gppo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float,
    *,
    dual_clip: float | None = None,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,  # every registered loss takes it; only Clip-Cov draws
) -> PolicyLossOutput:
    """GPPO, gradient-preserving clipping (Klear-Reasoner, arXiv 2508.07629).

    r~ = clamp(r, (1 - clip_low) * r / sg(r), (1 + clip_high) * r / sg(r)), sg = stop-gradient;
    l = max(-A * r, -A * r~), then the dual clip for A < 0 as in `ppo_clip_loss`. The forward
    value equals clip-higher PPO's; on a token PPO would clip, the gradient is that of -A * r at
    the bound (-A * (1 - clip_low) or -A * (1 + clip_high) per unit of logp) instead of 0; those
    tokens are flagged `preserved`. `clipped` flags only the dual clip (the one zero gradient
    left). Defaults: clip_low 0.2, clip_high 0.28, dual_clip 10. Implemented: the beta_1 = beta_2
    = 1 form above; the paper's general beta_1/beta_2 scaling is *unverified* and not offered.
    The dual clip is the standard constant cap (Klear's released code changed its dual-clip
    branch after release; not followed here). `mask` is accepted and not used.
    """
    ratio = torch.exp(logp - logp_old)
    unit = ratio / ratio.detach()  # exactly 1 forward, d/dlogp = 1
    at_bound = torch.where(
        ratio > 1.0 + clip_high,
        (1.0 + clip_high) * unit,
        torch.where(ratio < 1.0 - clip_low, (1.0 - clip_low) * unit, ratio),
    )
    unclipped = -advantages * ratio
    bounded = -advantages * at_bound
    loss = torch.maximum(unclipped, bounded)
    loss, dual = _dual_clip(loss, advantages, dual_clip)
    preserved = (bounded > unclipped) & ~dual
    return PolicyLossOutput(loss=loss, clipped=dual, ratio=ratio, dual_clipped=dual, preserved=preserved)


def _how_many(fraction: float, n_valid: int) -> int:
    """max(1, floor(fraction * n_valid)), 0 when there is no valid token."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"select_fraction must be in (0, 1], got {fraction}")
    if n_valid == 0:
        return 0
    # the epsilon keeps e.g. 0.29 * 100 = 28.999999999999996 from flooring to 28
    return min(n_valid, max(1, math.floor(fraction * n_valid + 1e-9)))


def _pick_uniform(candidates: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """(B, T) bool: min(n, #candidates) of the True entries of `candidates`, uniformly at random."""
    index = candidates.flatten().nonzero().squeeze(1)
    device = generator.device if generator is not None else torch.device("cpu")
    order = torch.randperm(index.numel(), generator=generator, device=device).to(index.device)
    chosen = torch.zeros(candidates.numel(), dtype=torch.bool, device=candidates.device)
    chosen[index[order[:n]]] = True
    return chosen.view_as(candidates)


@register_policy_loss("clip_cov")
def clip_cov_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    *,
    mask: torch.Tensor,
    clip_low: float,
    clip_high: float,
    select_fraction: float,
    cov_low: float,
    cov_high: float,
    generator: torch.Generator | None = None,
) -> PolicyLossOutput:
    """Clip-Cov (Cui et al., arXiv 2505.22617): cut the gradient of a few high-covariance tokens.

    The base loss is `ppo_clip_loss(clip_low, clip_high)`. Cov_t = (A_t - mean A) *
    (logp_t - mean logp), means over the valid tokens of this micro-batch (`token_covariance`).
    Candidates: valid, not already clipped by PPO, and cov_low < Cov_t < cov_high (strict).
    max(1, floor(select_fraction * N_valid)) of them (all, if fewer) are chosen uniformly at
    random with `generator` (None: torch's global RNG) and their loss is multiplied by 0, which
    removes their gradient; they are flagged `selected`.
    Published defaults: select_fraction (rho) 2e-4, cov_low (omega_low) 1, cov_high
    (omega_high) 5, clip_low = clip_high = 1 (ratio clip [0, 2], effectively off). Deviation for
    this project's toy scale (~1e3 tokens per batch, not 1e5-1e6): those values select nothing
    useful, so use fractions of a few percent and bounds from observed Cov quantiles
    (docs/research.md, small-scale note); the values come from the config.
    """
    ppo = ppo_clip_loss(logp, logp_old, advantages, clip_low, clip_high)
    valid = mask > 0
    cov = token_covariance(logp, advantages, mask)
    candidates = valid & ~ppo.clipped & (cov > cov_low) & (cov < cov_high)
    selected = _pick_uniform(candidates, _how_many(select_fraction, int(valid.sum())), generator)
    loss = ppo.loss * (~selected).to(ppo.loss.dtype)
    return PolicyLossOutput(loss=loss, clipped=ppo.clipped, ratio=ppo.ratio, selected=selected)


@register_policy_loss("kl_cov")
def kl_cov_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    *,
    mask: torch.Tensor,
    select_fraction: float,
    kl_coef: float,
    generator: torch.Generator | None = None,  # every registered loss takes it; only Clip-Cov draws
) -> PolicyLossOutput:
    """KL-Cov (Cui et al., arXiv 2505.22617): a KL penalty on the top-covariance tokens.

    Cov_t as in `clip_cov_loss`. The k = max(1, floor(select_fraction * N_valid)) valid tokens
    with the largest Cov_t are `selected`; their loss is -A * r + kl_coef * |logp - logp_old|,
    every other token's -A * r. No ratio clipping.
    Units: `select_fraction` (kappa) is a plain fraction; the original code takes it in percent
    (its 0.2 means 0.002 here). Published defaults: kappa 2e-3 (7B) / 2e-4 (32B), kl_coef
    (beta) 1; at toy scale use a few percent (docs/research.md, small-scale note).
    Gradient trap: d|x|/dx = 0 at x = 0, so on a fully on-policy mini-batch (logp == logp_old,
    e.g. the first mini-batch of a rollout) the penalty has no gradient; KL-Cov needs >= 2
    mini-batches per rollout to act.
    """
    ratio = torch.exp(logp - logp_old)
    pg = -advantages * ratio
    valid = mask > 0
    cov = token_covariance(logp, advantages, mask)
    scores = torch.where(valid, cov, torch.full_like(cov, -math.inf)).flatten()
    k = _how_many(select_fraction, int(valid.sum()))
    selected = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    selected[torch.topk(scores, k).indices] = True
    selected = selected.view_as(pg)
    loss = torch.where(selected, pg + kl_coef * (logp - logp_old).abs(), pg)
    no_clip = torch.zeros_like(selected)
    return PolicyLossOutput(loss=loss, clipped=no_clip, ratio=ratio, selected=selected)


def kl_k3(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref) (Schulman, "Approximating KL divergence", 2020).

    logp, logp_ref: (B, T) log-probs of the sampled tokens under the policy and the reference.
    Returns (B, T): exp(d) - d - 1 with d = logp_ref - logp. Non-negative per token, unbiased for
    the KL when tokens are sampled from pi, zero value and zero gradient where the two agree.
    Not clamped (verl clamps it to [-10, 10]); mask and aggregate it like any per-token loss.
    """
    d = logp_ref - logp
    return torch.exp(d) - d - 1.0


@register_policy_loss("sft")
def sft_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,  # every registered loss takes it; only Clip-Cov draws
) -> PolicyLossOutput:
    """Supervised negative log-likelihood -logp per token, for SFT stages of a curriculum (steps on
    diverse demonstrations, the remedy for lost breadth). Advantages and logp_old are unused."""
    zeros = torch.zeros_like(logp, dtype=torch.bool)
    return PolicyLossOutput(loss=-logp, clipped=zeros, ratio=torch.ones_like(logp))

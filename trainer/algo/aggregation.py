"""Loss aggregation over tokens: per-token loss (B, T) → one scalar. Pure: torch only.

Four modes, chosen by name through `AGGREGATIONS` (docs/research.md section 1), plus per-domain
normalisation (`aggregate_per_domain`): each domain is aggregated on its own, then the domains
are combined with explicit weights, so a domain's share of the gradient is its weight, not its
share of tokens.

Data parallelism: every mode is a sum over tokens divided by something. When that something is
a count over the *global* batch (`num_tokens`, `num_sequences`), summing `aggregate(...)` over
every micro-batch on every rank gives exactly the aggregate of the global batch. A backend that
*averages* gradients over ranks (DeepSpeed, DDP) then needs the loss multiplied by the world size;
that factor is the learner's business, not this module's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

import torch

from counterpoint.trainer.algo.registry import Registry

AggregationFn = Callable[..., torch.Tensor]
AGGREGATIONS: Registry[AggregationFn] = Registry("aggregation")
"""Mode name → fn(loss (B, T), mask (B, T), *, num_tokens, num_sequences, norm_constant)."""
DIVIDES_BY: dict[str, Literal["tokens", "sequences"]] = {}
"""Mode name → the count its denominator scales with; a domain is present when that count is > 0."""


def register_aggregation(
    name: str, *, divides_by: Literal["tokens", "sequences"]
) -> Callable[[AggregationFn], AggregationFn]:
    """Decorator: register a mode under `name`, with the count it divides by."""
    DIVIDES_BY[name] = divides_by
    return AGGREGATIONS.register(name)


def _valid_rows(mask: torch.Tensor) -> torch.Tensor:
    """(B,) bool: rows holding at least one valid token (a padding-only row is not a sequence)."""
    return mask.sum(dim=-1) > 0


def _count(given: float | torch.Tensor | None, local: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    value = local if given is None else torch.as_tensor(given, dtype=like.dtype, device=like.device)
    return value.to(like.dtype).clamp_min(1.0)


@register_aggregation("token-mean", divides_by="tokens")
def token_mean(loss: torch.Tensor, mask: torch.Tensor, num_tokens: float | None = None, **_unused) -> torch.Tensor:
    """DAPO's token-mean (arXiv 2503.14476): sum(M * loss) / N_tokens.

    loss, mask: (B, T). N_tokens = `num_tokens` if given (the valid-token count of the global
    batch), else sum(M) of this batch. Every valid token weighs the same.
    """
    mask = mask.to(loss.dtype)
    return (loss * mask).sum() / _count(num_tokens, mask.sum(), loss)


@register_aggregation("seq-mean-token-mean", divides_by="sequences")
def seq_mean_token_mean(
    loss: torch.Tensor, mask: torch.Tensor, num_sequences: float | None = None, **_unused
) -> torch.Tensor:
    """Original GRPO (arXiv 2402.03300): mean over sequences of (sum_t M * loss / sum_t M).

    loss, mask: (B, T). The denominator is `num_sequences` if given (global count of sequences
    with at least one valid token), else the number of such rows here; padding-only rows add 0
    and are not counted. A token weighs 1 / (N_seq * |o_i|): short responses weigh more per token.
    """
    mask = mask.to(loss.dtype)
    per_seq = (loss * mask).sum(dim=-1) / mask.sum(dim=-1).clamp_min(1.0)
    return per_seq.sum() / _count(num_sequences, _valid_rows(mask).sum(), loss)


@register_aggregation("seq-mean-token-sum", divides_by="sequences")
def seq_mean_token_sum(
    loss: torch.Tensor, mask: torch.Tensor, num_sequences: float | None = None, **_unused
) -> torch.Tensor:
    """Mean over sequences of sum_t M * loss: sum(M * loss) / N_seq.

    loss, mask: (B, T). N_seq as in `seq_mean_token_mean`. Every token weighs 1 / N_seq, so the
    loss scale grows with response length.
    """
    mask = mask.to(loss.dtype)
    return (loss * mask).sum() / _count(num_sequences, _valid_rows(mask).sum(), loss)


@register_aggregation("seq-mean-token-sum-norm", divides_by="sequences")
def seq_mean_token_sum_norm(
    loss: torch.Tensor,
    mask: torch.Tensor,
    num_sequences: float | None = None,
    norm_constant: float | None = None,
    **_unused,
) -> torch.Tensor:
    """Dr. GRPO (arXiv 2503.20783): mean over sequences of (sum_t M * loss) / C.

    = sum(M * loss) / (C * N_seq), N_seq as in `seq_mean_token_mean`; every token weighs the
    same constant 1 / (C * N_seq), whatever its response's length. C = `norm_constant` must be
    constant over training: pass the run's max response length (`max_response_tokens`). It is
    required here rather than defaulting to the padded width T, because T changes with every
    micro-batch (and includes prompt positions), which would silently break the constancy.
    docs/research.md writes the mode as sum(M * loss) / C; that is this value times N_seq (verl's
    form). Pass num_sequences=1 to get it.
    """
    if norm_constant is None or not norm_constant > 0:
        raise ValueError("seq-mean-token-sum-norm needs norm_constant > 0 (the max response length)")
    mask = mask.to(loss.dtype)
    return (loss * mask).sum() / (float(norm_constant) * _count(num_sequences, _valid_rows(mask).sum(), loss))


def aggregate(
    loss: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    *,
    num_tokens: float | None = None,
    num_sequences: float | None = None,
    norm_constant: float | None = None,
) -> torch.Tensor:
    """Aggregate a per-token loss (B, T) under `mask` (B, T) by `mode` into a scalar.

    What each mode divides by (global counts when given, else this batch's):
      token-mean              sum(M*l) / num_tokens
      seq-mean-token-mean     sum_i(sum_t M*l / sum_t M) / num_sequences
      seq-mean-token-sum      sum(M*l) / num_sequences
      seq-mean-token-sum-norm sum(M*l) / (norm_constant * num_sequences)
    Arguments a mode does not use are ignored, so a learner may pass all three always.
    """
    return get_aggregation(mode)(
        loss, mask, num_tokens=num_tokens, num_sequences=num_sequences, norm_constant=norm_constant
    )


get_aggregation = AGGREGATIONS.lookup


def counts_per_domain(
    mask: torch.Tensor, domain_ids: torch.Tensor, num_domains: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid tokens and sequences of each domain: two (D,) float tensors.

    mask: (B, T); domain_ids: (B,) ints in [0, D). A sequence counts if it has a valid token.
    Computed over the global batch (by the driver, or summed over ranks), these are the
    `num_tokens` / `num_sequences` that `aggregate_per_domain` takes.
    """
    mask = mask.float()
    tokens = torch.bincount(domain_ids, weights=mask.sum(dim=-1), minlength=num_domains).float()
    sequences = torch.bincount(domain_ids, weights=_valid_rows(mask).float(), minlength=num_domains).float()
    return tokens, sequences


def _as_vector(values: Mapping[int, float] | torch.Tensor | None, size: int, name: str) -> torch.Tensor | None:
    if values is None:
        return None
    if isinstance(values, Mapping):
        out = torch.full((size,), math.nan, dtype=torch.float64)
        for d, v in values.items():
            out[int(d)] = float(v)
        return out
    out = torch.as_tensor(values).detach().to("cpu", torch.float64).flatten()
    if out.numel() < size:
        raise ValueError(f"{name} has {out.numel()} entries but domain ids go up to {size - 1}")
    return out


def _num_domains(ids: torch.Tensor, valid: torch.Tensor, *per_domain) -> int:
    """1 + the largest domain id among valid rows and the keys / lengths of per-domain values."""
    size = int(ids[valid].max()) + 1 if bool(valid.any()) else 0
    for values in per_domain:
        if isinstance(values, Mapping):
            size = max([size] + [int(d) + 1 for d in values])
        elif values is not None:
            size = max(size, torch.as_tensor(values).numel())
    return size


def aggregate_per_domain(
    loss: torch.Tensor,
    mask: torch.Tensor,
    domain_ids: torch.Tensor,
    weights: Mapping[int, float] | torch.Tensor,
    mode: str,
    *,
    num_tokens: Mapping[int, float] | torch.Tensor | None = None,
    num_sequences: Mapping[int, float] | torch.Tensor | None = None,
    norm_constant: float | None = None,
) -> torch.Tensor:
    """Per-domain normalisation: sum_d w_d * aggregate(loss_d, mask_d, mode) / sum_present w_d.

    loss, mask: (B, T); domain_ids: (B,) ints; weights: {domain id: weight} or a (D,) tensor.
    `num_tokens` / `num_sequences`: per-domain global counts ({id: n} or (D,)), used as each
    domain's denominator exactly as in `aggregate`. A domain is *present* when the count its mode
    divides by (tokens for token-mean, sequences otherwise; global if given, else this batch's)
    is positive; weights are renormalised to sum 1 over present domains. With global counts,
    presence is global, so summing this over micro-batches and ranks gives the global value even
    when a micro-batch lacks a domain. Without it a domain's share of the gradient is its share
    of tokens (docs/calibration.md: joint-vs-single comparisons were confounded by exactly that).
    """
    get_aggregation(mode)  # an unknown mode fails even on a batch with nothing to aggregate
    ids = domain_ids.to(torch.long)
    size = _num_domains(ids, _valid_rows(mask), weights, num_tokens, num_sequences)
    w = _as_vector(weights, size, "weights")
    tokens, sequences = _as_vector(num_tokens, size, "num_tokens"), _as_vector(num_sequences, size, "num_sequences")
    local_tokens, local_seqs = counts_per_domain(mask, ids, size)
    uses_tokens = DIVIDES_BY[mode] == "tokens"
    given = tokens if uses_tokens else sequences
    local = (local_tokens if uses_tokens else local_seqs).to("cpu", torch.float64)[:size]
    denominators = local if given is None else given
    if given is not None and bool(((local > 0) & ~(given > 0)).any()):
        raise ValueError("a domain has valid tokens here but a global count of 0 (or none given)")
    present = [d for d in range(size) if denominators[d] > 0]
    missing = [d for d in present if math.isnan(float(w[d]))]
    if missing:
        raise KeyError(f"no weight given for domain ids {missing}")
    total_weight = sum(float(w[d]) for d in present)
    if present and not total_weight > 0:
        raise ValueError("the weights of the domains present sum to 0")
    out = (loss * 0.0).sum()  # keeps the graph (and the dtype) when no domain is here
    for d in present:
        rows = ids == d
        if not bool(rows.any()) or float(w[d]) == 0.0:
            continue
        value = aggregate(
            loss[rows],
            mask[rows],
            mode,
            num_tokens=None if tokens is None else float(tokens[d]),
            num_sequences=None if sequences is None else float(sequences[d]),
            norm_constant=norm_constant,
        )
        out = out + (float(w[d]) / total_weight) * value
    return out

"""Per-domain sampling in the loop: each domain's options (`domains.<d>.sampling`, defaults from
`generation`), prompts grouped so that each engine call has one setting, and over-long prompts
skipped (and counted), never truncated."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from counterpoint.rollout.records import Prompt

if TYPE_CHECKING:
    from counterpoint.config import CounterpointConfig
    from counterpoint.rollout.tasks import TaskSource

SamplingKey = tuple[int, tuple[tuple[str, object], ...]]
"""(max response tokens, the engine's other options as sorted (name, value) pairs)."""


def sampling_key(cfg: CounterpointConfig, domain: str) -> SamplingKey:
    """Domain `domain`'s sampling options, hashable (prompts with equal keys share an engine call)."""
    s = cfg.domains[domain].sampling
    extra = {"top_p": s.top_p, "top_k": s.top_k, "stop": tuple(s.stop) or None}
    return (s.max_response_tokens or cfg.generation.max_response_tokens, tuple((k, v) for k, v in extra.items() if v))


def engine_options(key: SamplingKey) -> dict:
    """The generate() keyword arguments of a sampling key (only those set, so a rollout client
    that knows none of them still works for domains that set none)."""
    max_tokens, extra = key
    return {"max_tokens": max_tokens, **{k: list(v) if k == "stop" else v for k, v in extra}}


def group_by_sampling(cfg: CounterpointConfig, prompts: list[Prompt]) -> dict[SamplingKey, list[Prompt]]:
    groups: dict[SamplingKey, list[Prompt]] = {}
    for p in prompts:
        groups.setdefault(sampling_key(cfg, p.domain), []).append(p)
    return groups


def prompt_limit(cfg: CounterpointConfig, domain: str, max_model_len: int | None) -> int:
    """The longest prompt, in tokens, domain `domain` may send (and the engine can take)."""
    limit = cfg.domains[domain].sampling.max_prompt_tokens or cfg.generation.max_prompt_tokens
    return limit if max_model_len is None else min(limit, max_model_len - 1)


def fits(count: Callable[[Prompt], int] | None, limit: int, prompt: Prompt) -> bool:
    return count is None or count(prompt) <= limit


def draw_fitting(source: TaskSource, n: int, count, limit: int) -> tuple[list[tuple[Prompt, str]], int]:
    """`n` train prompts of `source` no longer than `limit` tokens, and how many were skipped."""
    out, skipped = [], 0
    while len(out) < n:
        for item in source.next_batch(n - len(out)):
            if fits(count, limit, item[0]):
                out.append(item)
            else:
                skipped += 1
        if skipped > 100 * n + 1000:
            raise RuntimeError(
                f"domain {source.domain.name}: skipped {skipped} prompts longer than {limit} tokens for {n}; "
                f"raise domains.{source.domain.name}.sampling.max_prompt_tokens or shorten the prompts"
            )
    return out, skipped

"""Config of the rollout side: domains and their task sources, generation, reward workers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from counterpoint.configbase import Section

DomainName = Literal["math", "code", "creative"]


class DomainConfig(Section):
    weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    """Share of each step's prompts given to this domain (weights are normalised over domains)."""
    eval_prompts: int = Field(32, ge=1)
    """Size of the held-out eval split, scored with greedy decoding."""
    reward_workers: int = Field(1, ge=1)
    """Reward actors serving this domain."""


class GenerationConfig(Section):
    prompts_per_step: int = Field(24, ge=1)
    """Prompts drawn per RL step over all domains (split by domain weight)."""
    samples_per_prompt: int = Field(4, ge=2)
    """G, the group size: responses sampled per prompt (GRPO needs at least 2)."""
    max_response_tokens: int = Field(24, ge=1)
    temperature: float = Field(1.0, gt=0.0)
    """Sampling temperature for training rollouts; eval decodes greedily."""
    engines: int = Field(1, ge=1)
    """Rollout actors, each holding one vLLM engine."""
    kv_cache_mib: int = Field(64, ge=8)
    """KV-cache size per engine; vLLM on CPU requires it set explicitly."""
    max_num_seqs: int = Field(128, ge=1)
    """Sequences a vLLM engine schedules at once."""


class CodeSandboxConfig(Section):
    cpu_seconds: int = Field(2, ge=1)
    memory_mib: int = Field(256, ge=32)
    wall_seconds: float = Field(5.0, gt=0.0)

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
    """Size of the held-out eval split."""
    eval_samples_per_prompt: int = Field(1, ge=1)
    """Responses per eval prompt: 1 (greedy) for checkable domains; a group for open-ended ones,
    whose novelty reward is only defined against other samples."""
    eval_temperature: float = Field(0.0, ge=0.0)
    """0 decodes greedily."""
    reward_workers: int = Field(1, ge=1)
    """Reward actors serving this domain."""
    suite: str = "synthetic"
    """Where the domain's problems come from: "synthetic" (sized for the tiny model) or a suite
    shipped in a package: math "gsm" (reasoning-gym), "champ"; code "humaneval"; creative
    "writingbench" (see docs/rewards.md)."""


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
    seccomp: bool = True
    """The sandbox's system call filter (x86_64, aarch64); turn it off only on a machine it does not
    support, where the sandbox otherwise refuses to run code."""


class MathRewardConfig(Section):
    timeout_seconds: float = Field(2.0, gt=0.0)
    """Per-check deadline in CPU seconds of the checking child (a loaded host does not turn a
    correct answer into a timeout; 10x this in wall clock bounds a check regardless); math-verify
    runs in a child process that is killed and replaced on timeout, so a pathological answer
    never stalls the reward worker."""
    max_response_chars: int = Field(4096, ge=64)
    """Only the last this many characters of a response are parsed."""


class CreativeJudgeConfig(Section):
    model_path: str
    """A local Hugging Face model folder served by a vLLM engine inside each creative reward
    worker. On CPU the built-in models are far too small to judge: this is plumbing there."""
    max_tokens: int = Field(8, ge=1)
    kv_cache_mib: int = Field(64, ge=8)


class CreativeRewardConfig(Section):
    novelty_kind: Literal["lexical", "embedding"] = "lexical"
    """"lexical": character-trigram novelty (fast); "embedding": cosine novelty with
    all-MiniLM-L6-v2 from its package (~50 short lines/s on one CPU core)."""
    novelty_reduce: Literal["mean", "max"] = "mean"
    """Novelty = 1 - the mean (or max) similarity to the group's other samples and the memory."""
    memory_size: int = Field(0, ge=0)
    """Recent outputs remembered per reward worker (0: novelty within the group only)."""
    novelty_weight: float = Field(1.0, ge=0.0)
    judge_weight: float = Field(0.0, ge=0.0)
    judge: CreativeJudgeConfig | None = None


class RewardsConfig(Section):
    math: MathRewardConfig = MathRewardConfig()
    creative: CreativeRewardConfig = CreativeRewardConfig()

"""Config of the rollout side: the task domains (each one a kind, a suite, a reward and an eval
spec), generation, and the reward settings of each kind.

A domain is data: a user-chosen name mapped to one of the kinds below, so two math domains (say
`math` and `algebra` on another suite) need only config. `DomainConfig` is a union tagged by
`kind`; each kind declares the suites it has and its own `reward` section, and every default of a
reward (sandbox limits, math-check deadlines, creative scoring) is declared here once: the runtime
code takes these sections as they are (`rollout/domains.py` builds a domain from its slice).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from counterpoint.configbase import Section

DomainKind = Literal["math", "code", "creative"]
KINDS: tuple[str, ...] = ("math", "code", "creative")
"""Every kind of domain, in the order the default config lists them."""
DOMAIN_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
DomainName = Annotated[str, StringConstraints(pattern=DOMAIN_NAME_PATTERN)]
"""A domain's name: what prompts, metrics, advantages and the schedule are grouped by."""


class EvalSpec(Section):
    """A domain's held-out split and how it is decoded."""

    prompts: int = Field(32, ge=1)
    """Size of the held-out eval split."""
    samples_per_prompt: int = Field(1, ge=1)
    """Responses per eval prompt: 1 (greedy) for checkable domains; a group for open-ended ones,
    whose novelty reward is only defined against other samples."""
    temperature: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    """0 decodes greedily."""


class MathReward(Section):
    """The math reward: math-verify in a child process, each check under a deadline."""

    timeout_seconds: float = Field(2.0, gt=0.0, allow_inf_nan=False)
    """Per-check deadline in CPU seconds of the checking child (a loaded host does not turn a
    correct answer into a timeout; `wall_factor` times this in wall clock bounds a check regardless);
    math-verify runs in a child process that is killed and replaced on timeout, so a pathological
    answer never stalls the reward worker."""
    max_response_chars: int = Field(4096, ge=64)
    """Only the last this many characters of a response are parsed."""
    wall_factor: float = Field(10.0, ge=1.0, allow_inf_nan=False)
    """A check also ends after `wall_factor × timeout_seconds` of wall clock, whatever CPU the child
    got: the bound on how long one check can hold the reward worker."""
    memory_mib: int = Field(1024, ge=64)
    """Address-space limit of the checking child, so a huge power fails fast instead of filling the host."""
    startup_seconds: float = Field(120.0, gt=0.0, allow_inf_nan=False)
    """How long a fresh child may take to import math-verify (a busy 2-core box took ~3 s)."""


class SandboxConfig(Section):
    """Limits of one sandboxed run of model-written code (the bubblewrap sandbox takes this as it is)."""

    cpu_seconds: int = Field(2, ge=1)
    """CPU time of a run (RLIMIT_CPU; SIGKILL at the limit)."""
    memory_mib: int = Field(256, ge=32)
    """Address-space limit (RLIMIT_AS) of every process in the sandbox."""
    wall_seconds: float = Field(5.0, gt=0.0, allow_inf_nan=False)
    """Wall-clock limit of a run, after which everything in it is killed."""
    seccomp: bool = True
    """The sandbox's system call filter (x86_64, aarch64); turn it off only on a machine it does not
    support, where the sandbox otherwise refuses to run code (the other layers remain)."""
    max_processes: int = Field(16, ge=4)
    """RLIMIT_NPROC, counted over all processes of the run's uid on the host (bwrap, the harness and
    the candidate's process take 3)."""
    max_file_mib: int = Field(1, ge=1)
    """Largest file a run may write (RLIMIT_FSIZE)."""
    tmp_mib: int = Field(16, ge=1)
    """Size of the in-memory /tmp, so many small files cannot fill the host's RAM."""
    max_output_kib: int = Field(16, ge=1)
    """Cap on each of stdout and stderr; the rest is read and discarded."""

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 2**20

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mib * 2**20

    @property
    def tmp_bytes(self) -> int:
        return self.tmp_mib * 2**20

    @property
    def max_output_bytes(self) -> int:
        return self.max_output_kib * 2**10


class CodeReward(Section):
    """The code reward: the fraction of a problem's tests that pass in the sandbox."""

    sandbox: SandboxConfig = SandboxConfig()
    """Limits of every sandboxed run of a response's code."""
    parallel_runs: int = Field(2, ge=1)
    """Sandbox runs at once per group (each mostly waits on its subprocess)."""


class JudgeConfig(Section):
    """An LLM judge for the creative reward, served inside each creative reward worker."""

    model_path: str
    """A local Hugging Face model folder served by a vLLM engine inside each creative reward
    worker. On CPU the built-in models are far too small to judge: this is plumbing there."""
    max_tokens: int = Field(8, ge=1)
    """Tokens of the judge's reply (the score comes first)."""
    kv_cache_mib: int = Field(64, ge=8)
    """KV-cache size of the judge's engine."""


class CreativeReward(Section):
    """The creative reward: quality gate × weighted mean of novelty and the judge's score."""

    novelty_kind: Literal["lexical", "embedding"] = "lexical"
    """"lexical": character-trigram novelty (fast); "embedding": cosine novelty with
    all-MiniLM-L6-v2 from its package (~50 short lines/s on one CPU core)."""
    novelty_reduce: Literal["mean", "max"] = "mean"
    """Novelty = 1 - the mean (or max) similarity to the group's other samples and the memory."""
    memory_size: int = Field(0, ge=0)
    """Recent outputs remembered per reward worker (0: novelty within the group only)."""
    novelty_weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    """Weight of novelty in the reward's weighted mean."""
    judge_weight: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    """Weight of the LLM judge in the reward's weighted mean (above 0 needs `judge`)."""
    judge: JudgeConfig | None = None
    """The LLM judge (None: no judge)."""


class _Domain(Section):
    """What every domain has, whatever its kind."""

    kind: DomainKind
    """What the domain is: "math", "code" or "creative" (its rewards and suites). May be left out
    when the domain's name is a kind."""
    weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    """Share of each step's prompts given to this domain (weights are normalised over domains)."""
    reward_workers: int = Field(1, ge=1)
    """Reward actors serving this domain."""
    eval: EvalSpec = EvalSpec()
    """The held-out split and how it is decoded."""


class MathDomainConfig(_Domain):
    """A domain of kind math: problems with a checkable answer."""

    kind: Literal["math"] = "math"
    """Always "math" here; may be left out when the domain is named "math"."""
    suite: Literal["synthetic", "gsm", "champ"] = "synthetic"
    """Where the problems come from: "synthetic" (arithmetic sized for the tiny model), "gsm"
    (reasoning-gym), "champ" (see docs/rewards.md)."""
    reward: MathReward = MathReward()
    """The math-verify check."""


class CodeDomainConfig(_Domain):
    """A domain of kind code: functions whose tests run in the sandbox."""

    kind: Literal["code"] = "code"
    """Always "code" here; may be left out when the domain is named "code"."""
    suite: Literal["synthetic", "humaneval"] = "synthetic"
    """Where the problems come from: "synthetic" (one-line functions sized for the tiny model) or
    "humaneval" (see docs/rewards.md)."""
    reward: CodeReward = CodeReward()
    """The sandboxed test run."""


class CreativeDomainConfig(_Domain):
    """A domain of kind creative: open-ended writing, rewarded for quality and range."""

    kind: Literal["creative"] = "creative"
    """Always "creative" here; may be left out when the domain is named "creative"."""
    suite: Literal["synthetic", "writingbench"] = "synthetic"
    """Where the prompts come from: "synthetic" (a line on a topic, sized for the tiny model) or
    "writingbench" (see docs/rewards.md)."""
    reward: CreativeReward = CreativeReward()
    """Quality gate × weighted mean of novelty and judge."""


DomainConfig = Annotated[MathDomainConfig | CodeDomainConfig | CreativeDomainConfig, Field(discriminator="kind")]
"""One domain's config slice, by kind."""
DOMAIN_CONFIGS: dict[str, type[_Domain]] = {
    "math": MathDomainConfig,
    "code": CodeDomainConfig,
    "creative": CreativeDomainConfig,
}


def default_domains() -> dict[str, _Domain]:
    """One domain of each kind, named by its kind, all defaults."""
    return {kind: DOMAIN_CONFIGS[kind]() for kind in KINDS}


def fill_kinds(domains: Any) -> Any:
    """The raw `domains` mapping with each missing `kind` filled from the domain's name (when the
    name is a kind); a bad name or kind fails naming its field (`domains.<name>.kind: ...`)."""
    if not isinstance(domains, dict):
        return domains  # the field's own validation names the error
    out = {}
    for name, entry in domains.items():
        if not isinstance(name, str) or not re.match(DOMAIN_NAME_PATTERN, name):
            raise ValueError(
                f"domains.{name}: a domain name is a lowercase letter, then up to 31 lowercase "
                f"letters, digits or _ ({DOMAIN_NAME_PATTERN})"
            )
        if entry is None:
            entry = {}  # `code:` with nothing after it in YAML: every default
        if isinstance(entry, dict):
            kind = entry.get("kind")
            if kind is None:
                if name not in KINDS:
                    raise ValueError(f"domains.{name}.kind: required (one of {', '.join(KINDS)})")
                entry = {**entry, "kind": name}
            elif kind not in KINDS:
                raise ValueError(f"domains.{name}.kind: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        out[name] = entry
    return out


class GenerationConfig(Section):
    """How the rollout engines sample training responses."""

    prompts_per_step: int = Field(24, ge=1)
    """Prompts drawn per RL step over all domains (split by domain weight)."""
    samples_per_prompt: int = Field(4, ge=2)
    """G, the group size: responses sampled per prompt (GRPO needs at least 2)."""
    max_response_tokens: int = Field(24, ge=1)
    """Longest response sampled, in tokens (training and eval)."""
    temperature: float = Field(1.0, gt=0.0)
    """Sampling temperature for training rollouts; eval decodes as each domain's `eval` says."""
    engines: int = Field(1, ge=1)
    """Rollout actors, each holding one vLLM engine."""
    kv_cache_mib: int = Field(64, ge=8)
    """KV-cache size per engine; vLLM on CPU requires it set explicitly."""
    max_num_seqs: int = Field(128, ge=1)
    """Sequences a vLLM engine schedules at once."""

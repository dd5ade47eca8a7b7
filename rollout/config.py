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

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from counterpoint.configbase import Section
from counterpoint.rollout.domain_config import DomainKind, EvalSpec, PythonDomainConfig, _Domain  # noqa: F401

KINDS: tuple[str, ...] = ("math", "code", "creative")
"""The kinds with built-in suites, in the order the default config lists them."""
ALL_KINDS: tuple[str, ...] = (*KINDS, "python")
"""Every kind of domain (python: the user's rows and reward function, rollout/domain_config.py)."""
DOMAIN_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
DomainName = Annotated[str, StringConstraints(pattern=DOMAIN_NAME_PATTERN)]
"""A domain's name: what prompts, metrics, advantages and the schedule are grouped by."""


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
    rubric: str | None = None
    """The rubric for prompts whose suite has none (the synthetic suite; WritingBench's per-task
    checklists take precedence). None: `judge.py`'s DEFAULT_RUBRIC."""
    max_model_len: int | None = Field(None, ge=64)
    """Context of the judge's engine in tokens (None: 2048, or the model's own limit if smaller);
    a judge prompt longer than this fails as the engine's error."""
    template: str | None = None
    """The judge's prompt with {task}, {rubric} and {response} (None: `judge.py`'s DEFAULT_TEMPLATE)."""


class FluencyConfig(Section):
    """Does the writing read as language (rollout/rewards/fluency.py)? A sample that fails scores 0
    under every creative reward kind (`Score.error` `fluency_failed`)."""

    enabled: bool = True
    """Off: no fluency check (the pre-fluency reward; nonsense with the topic word then pays)."""
    min_zipf: float = Field(2.0, ge=0.0, allow_inf_nan=False)
    """A word is known when its wordfreq Zipf frequency (log10 per billion words) is at least this;
    2.0 keeps rare real words ("hums" 2.5) and drops random letters (0)."""
    min_known_share: float = Field(0.85, ge=0.0, le=1.0, allow_inf_nan=False)
    """Least share of a text's words that must be known words."""
    order: Literal["bigram", "lm", "none"] = "bigram"
    """The order-aware check: "bigram" (a word-bigram model of the suite's demonstrations, smoothed
    towards wordfreq; needs a suite with demonstrations), "lm" (mean token log-likelihood under
    `reference_model`), "none" (known words and repetition only)."""
    reference_model: str | None = None
    """A causal-LM folder for `order: lm` (e.g. the base model a run trains from), read with plain
    transformers on CPU in the worker."""
    order_floor: float | None = Field(None, allow_inf_nan=False)
    """Mean log-prob (nats per word for "bigram", per token for "lm") below which a text fails.
    None: measured defaults, -4.0 for "bigram" (the synthetic suite's demonstrations score -1.8 to
    -2.9, the same lines shuffled -3.6 to -10.3, 1.3% of them above -4) and -3.0 for "lm" (the
    default tiny model: demonstrations -0.6 to -1.9, shuffled -4.0 to -12.1). Recalibrate it for
    another suite or reference model."""
    order_full: float | None = Field(None, allow_inf_nan=False)
    """Mean log-prob at or above which the order part of the fluency value is 1 (linear from the
    floor). None: -2.5 for "bigram", -1.5 for "lm"."""
    max_repeated_bigram_share: float = Field(0.2, ge=0.0, le=1.0, allow_inf_nan=False)
    """Largest share of word pairs (punctuation stripped) that may repeat an earlier pair, in texts
    of up to 40 words (longer ones: the gate's repeated 4-gram rule)."""
    bigram_alpha: float = Field(2.0, gt=0.0, allow_inf_nan=False)
    """Dirichlet smoothing of the bigram model (higher: unseen pairs cost less)."""
    batch_size: int = Field(64, ge=1)
    """Texts per forward pass of the reference LM."""

    @model_validator(mode="after")
    def _check_order(self) -> FluencyConfig:
        if self.order == "lm" and self.reference_model is None:
            raise ValueError("reference_model: required when order is 'lm' (a causal-LM folder)")
        if self.order_floor is not None and self.order_full is not None and self.order_full <= self.order_floor:
            raise ValueError(f"order_full ({self.order_full}) must be above order_floor ({self.order_floor})")
        return self


class QualityConfig(Section):
    """The quality score in [0, 1]: weighted mean of fluency, topic fit and form, after the gate and
    the fluency check (either failing: quality 0)."""

    fluency_weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    """Weight of the fluency value (known-word share × order score)."""
    topic_weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    """Weight of topic fit: the topic word present as a word, said once or twice (1), more (0.5)."""
    form_weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    """Weight of form: length inside the suite's ideal window, distinct words."""
    max_prompt_overlap: float = Field(0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    """A response whose character-trigram Jaccard similarity to the prompt is above this copies the
    prompt and fails the gate."""


class _CreativeRewardBase(Section):
    """What every creative reward kind has."""

    fluency: FluencyConfig = FluencyConfig()
    """The fluency check and its thresholds."""
    quality: QualityConfig = QualityConfig()
    """The quality score's weights."""


class CreativeReward(_CreativeRewardBase):
    """`type: novelty` (the default): quality × weighted mean of novelty and the judge's score.
    Pays for range: identical samples score 0."""

    type: Literal["novelty"] = "novelty"
    """Quality × novelty against the group (and the memory), optionally mixed with a judge."""
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


NoveltyReward = CreativeReward
"""`type: novelty`, under the name of its kind."""


class PreferenceReward(_CreativeRewardBase):
    """`type: preference`: the quality score alone (fluency, topic fit, form), no diversity term.
    Many outputs score near the top: the reward under which creative entropy collapses
    (docs/calibration.md), kept to study that collapse."""

    type: Literal["preference"] = "preference"
    """Quality only."""

    @property
    def judge_weight(self) -> float:
        return 0.0

    @property
    def judge(self) -> None:
        return None


class JudgeReward(_CreativeRewardBase):
    """`type: judge`: an LLM judge's rubric score, for samples that pass the gate and fluency
    (others score 0 and are not sent to it). `quality_weight` mixes in the quality score."""

    type: Literal["judge"] = "judge"
    """LLM-as-judge over a rubric."""
    judge: JudgeConfig
    """The judge: its model folder (vLLM engine in each reward worker), prompt and rubric."""
    quality_weight: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    """Weight of the quality score beside the judge's (weight 1) in the reward's weighted mean."""

    @property
    def judge_weight(self) -> float:
        return 1.0


class DiversityWeightedReward(_CreativeRewardBase):
    """`type: diversity_weighted` (DARLING-style): quality × (1 − mean similarity to the other
    samples of the group). Pays for good writing first, and for it differing from its group."""

    type: Literal["diversity_weighted"] = "diversity_weighted"
    """Quality × diversity."""
    similarity: Literal["lexical", "embedding"] = "lexical"
    """How similarity is measured: character-trigram Jaccard, or MiniLM cosine."""
    diversity_floor: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    """reward = quality × (floor + (1 − floor) × diversity): above 0, a good sample in a group of
    copies keeps some reward."""

    @property
    def judge_weight(self) -> float:
        return 0.0

    @property
    def judge(self) -> None:
        return None


def _default_reward_type(value: Any) -> Any:
    """`type` defaults to "novelty", so today's creative reward sections validate unchanged."""
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, dict) and "type" not in value:
        return {**value, "type": "novelty"}
    return value


CreativeRewardConfig = Annotated[
    CreativeReward | PreferenceReward | JudgeReward | DiversityWeightedReward,
    Field(discriminator="type"),
    BeforeValidator(_default_reward_type),
]
"""A creative domain's reward, by `type`: novelty (default), preference, judge, diversity_weighted."""
CREATIVE_REWARD_TYPES = ("novelty", "preference", "judge", "diversity_weighted")


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
    reward: CreativeRewardConfig = CreativeReward()
    """The reward kind (`type`) and its settings; see docs/rewards.md#creative."""


DomainConfig = Annotated[
    MathDomainConfig | CodeDomainConfig | CreativeDomainConfig | PythonDomainConfig, Field(discriminator="kind")
]
"""One domain's config slice, by kind."""
DOMAIN_CONFIGS: dict[str, type[_Domain]] = {
    "math": MathDomainConfig,
    "code": CodeDomainConfig,
    "creative": CreativeDomainConfig,
    "python": PythonDomainConfig,
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
                if name not in ALL_KINDS:
                    raise ValueError(f"domains.{name}.kind: required (one of {', '.join(ALL_KINDS)})")
                entry = {**entry, "kind": name}
            elif kind not in ALL_KINDS:
                raise ValueError(f"domains.{name}.kind: unknown kind {kind!r} (one of {', '.join(ALL_KINDS)})")
        out[name] = entry
    return out


class GenerationConfig(Section):
    """How the rollout engines sample training responses."""

    prompts_per_step: int = Field(24, ge=1)
    """Prompts drawn per RL step over all domains (split by domain weight)."""
    samples_per_prompt: int = Field(4, ge=2)
    """G, the group size: responses sampled per prompt (GRPO needs at least 2)."""
    max_response_tokens: int = Field(24, ge=1)
    """Longest response sampled, in tokens (training and eval; a domain's `sampling` may change it)."""
    max_prompt_tokens: int = Field(512, ge=1)
    """Longest prompt, in tokens (a domain's `sampling` may change it); longer ones are skipped."""
    temperature: float = Field(1.0, gt=0.0)
    """Sampling temperature for training rollouts; eval decodes as each domain's `eval` says."""
    engines: int = Field(1, ge=1)
    """Rollout actors, each holding one vLLM engine."""
    kv_cache_mib: int = Field(64, ge=8)
    """KV-cache size per engine; vLLM on CPU requires it set explicitly."""
    max_num_seqs: int = Field(128, ge=1)
    """Sequences a vLLM engine schedules at once."""
    max_staleness: int = Field(0, ge=0)
    """How many updates older than the learner's a trained sample's policy may be. 0: strictly
    on-policy (generate, then train, one after the other); k > 0: the engines generate the next
    k steps' rollouts while the learner trains, and the update corrects for the lag
    (`learner.off_policy`)."""
    threads: int | Literal["auto"] = "auto"
    """torch threads per engine, fixed when it starts: auto is one (decoding small models is bound
    by per-step overhead, not arithmetic; cluster/cores.py, docs/performance.md)."""

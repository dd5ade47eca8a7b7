"""The one typed config tree of a run, loaded from YAML.

Each package owns its slice (`rollout.config`, `trainer.config`, `cluster.config`); this module
assembles them, checks the rules that span slices, and turns validation errors into messages
that name the field to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from counterpoint.cluster.config import ClusterConfig
from counterpoint.configbase import Section, type_shorthand
from counterpoint.rollout.config import DomainConfig, DomainName, GenerationConfig, default_domains, fill_kinds
from counterpoint.trainer.config import LearnerConfig, ModelConfig, ScheduleConfig
from counterpoint.trainer.curriculum.plan import StageKind, split_by_weight
from counterpoint.trainer.curriculum.stages import ScheduleError, Stage
from counterpoint.trainer.metrics_config import MetricsConfig


class RunSection(Section):
    """The run as a whole: its name and folder, its length, and how often it evaluates, saves and
    restarts."""

    name: str = Field("counterpoint", pattern=r"^[A-Za-z0-9_.-]+$")
    """Prefix of the run id; the run folder is `<output_dir>/<name>-<timestamp>`."""
    output_dir: Path = Path("runs")
    """Folder under which each run gets its own folder (relative paths: from the working directory)."""
    seed: int = 0
    """Seed of the run: the task sources' prompt order, the driver's and the learner's RNGs, and
    the rollout engines' sampling (engine i uses seed + i)."""
    steps: int = Field(40, ge=1)
    """RL steps to train."""
    eval_every_steps: int = Field(0, ge=0)
    """Evaluate on the held-out splits every N steps (0: only at the start and the end)."""
    checkpoint_every_steps: int = Field(20, ge=0)
    """Save a resumable checkpoint every N steps (0: only at the end)."""
    max_restarts: int = Field(2, ge=0)
    """Learner-rank failures survived by restarting the actors from the last checkpoint."""
    max_reward_failure_fraction: float = Field(0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    """Stop the run with a `RewardFailure` when, in one step, more than this share of a domain's
    samples got their reward from a failure on our side (an infrastructure failure: the math
    verifier timed out or crashed, a gold answer did not parse, the code sandbox's harness failed,
    the judge's reply held no score; docs/rewards.md). Checked before the update, so that batch
    is never trained on. Wrong answers and failing programs are the policy's and never count.
    0.5: a domain whose rewards are mostly not verdicts stops the run, while a few timeouts on
    pathological answers do not; 0: stop on the first; 1: never stop (they are still counted,
    in `reward_errors`)."""


class CounterpointConfig(Section):
    """A run: every section, each owned by the package that uses it."""

    run: RunSection = RunSection()
    """The run's name, folder, seed, steps, evaluation and checkpoint cadence."""
    model: ModelConfig = ModelConfig()
    """The policy model (the built-in tiny one, SmolLM2, or a local folder)."""
    domains: dict[DomainName, DomainConfig] = Field(default_factory=default_domains)
    """The task domains trained, by name (lowercase, digits, _): each a kind (math, code, creative;
    it defaults to the name when the name is a kind), a suite, its reward, weight and eval spec."""
    generation: GenerationConfig = GenerationConfig()
    """Rollouts: prompts per step, the group size, sampling, the vLLM engines."""
    learner: LearnerConfig = LearnerConfig()
    """The DeepSpeed learner: ranks, optimiser, advantages, losses and entropy controls per domain."""
    schedule: ScheduleConfig = ScheduleConfig()
    """The initial curriculum (its policy), which operators then change live."""
    cluster: ClusterConfig = ClusterConfig()
    """Where the run executes: an embedded Ray cluster or one to join."""
    metrics: MetricsConfig = MetricsConfig()
    """What a run measures beyond rewards (diversity, effective rank, the entropy law) and where
    the figures go (TensorBoard, W&B, MLflow, the HTML report)."""

    @field_validator("domains", mode="before")
    @classmethod
    def _fill_domain_kinds(cls, value):
        return fill_kinds(value)

    @model_validator(mode="after")
    def _check_sizes(self) -> CounterpointConfig:
        if not self.domains:
            raise ValueError("domains: list at least one domain")
        if sum(d.weight for d in self.domains.values()) <= 0:
            raise ValueError("domains: at least one domain needs a weight above 0")
        if self.model.source == "path" and self.model.path is None:
            raise ValueError("model.path: required when model.source is 'path'")
        if self.model.source != "path" and self.model.path is not None:
            raise ValueError("model.path: only used when model.source is 'path'")
        tiny = self.model.tiny
        if tiny.hidden_size % tiny.num_heads:
            raise ValueError(
                f"model.tiny.hidden_size ({tiny.hidden_size}) must be divisible by "
                f"model.tiny.num_heads ({tiny.num_heads})"
            )
        if self.model.source == "tiny" and self.model.chat_template.apply is True:
            raise ValueError("model.chat_template.apply: true, but the tiny model has no chat template (auto or false)")
        for name, domain in self.domains.items():  # each suite is checked by its kind's `suite` field
            suite = getattr(domain, "suite", "synthetic")
            if domain.source is not None and suite != "synthetic":
                raise ValueError(
                    f"domains.{name}.suite: {suite!r} and domains.{name}.source both say where the prompts "
                    "come from; keep one"
                )
            if domain.kind == "creative" and domain.reward.judge_weight > 0 and domain.reward.judge is None:
                raise ValueError(
                    f"domains.{name}.reward.judge: required when domains.{name}.reward.judge_weight is above 0"
                )
        for name in self.learner.per_domain:
            if name not in self.domains:
                raise ValueError(
                    f"learner.per_domain.{name}: not a configured domain (domains: {', '.join(self.domains)})"
                )
        self._check_schedule()
        sequences = self.prompts_per_domain()
        if sum(sequences.values()) * self.generation.samples_per_prompt < self.learner.ranks:
            raise ValueError(
                "learner.ranks: more ranks than sequences per step; raise "
                "generation.prompts_per_step or lower learner.ranks"
            )
        return self

    def _check_schedule(self) -> None:
        self.schedule.policy.check_domains(list(self.domains))
        try:
            stages = self.initial_stages()
        except ScheduleError as err:
            raise ValueError(f"schedule.policy.{err}") from None
        for i, stage in enumerate(stages):
            unknown = [d for d in stage.domains if d not in self.domains]
            if unknown:
                raise ValueError(
                    f"schedule.policy.stages[{i}].domains: unknown domains {unknown} "
                    f"(domains: {', '.join(self.domains)})"
                )
            for d in stage.domains:
                source = self.domains[d].source
                if stage.kind == StageKind.SFT and source is not None and source.demonstration is None:
                    raise ValueError(
                        f"domains.{d}.source.demonstration: required, since the SFT stage "
                        f"schedule.policy.stages[{i}] trains on domain {d}'s demonstrations"
                    )

    def initial_stages(self, order: list[str] | None = None) -> list[Stage]:
        """The schedule the run starts with. For the bwt policy, `order` is the order its
        transfer probes chose (without it: `schedule.policy.order` as configured). A domain
        with an adaptive entropy control gets its configured target as the stage's
        `entropy_target` where the stage sets none: from then on the schedule holds it."""
        stages = self.schedule.policy.initial_stages({n: d.weight for n, d in self.domains.items()}, order)
        out = []
        for stage in stages:
            domains = {}
            for name, setting in stage.domains.items():
                entropy = self.learner.entropy_for(name)
                if setting.entropy_target is None and entropy.adaptive:
                    setting = setting.model_copy(update={"entropy_target": entropy.target})
                domains[name] = setting
            out.append(stage.model_copy(update={"domains": domains}))
        return out

    def probe_domains(self) -> list[str]:
        """The domains the bwt policy probes and orders."""
        return self.schedule.policy.probe_domains(list(self.domains))

    def max_tokens(self) -> tuple[int, int]:
        """The longest prompt and the longest response any domain may have, in tokens."""
        gen = self.generation
        prompts = [d.sampling.max_prompt_tokens or gen.max_prompt_tokens for d in self.domains.values()]
        responses = [d.sampling.max_response_tokens or gen.max_response_tokens for d in self.domains.values()]
        return max(prompts), max(responses)

    def prompts_per_domain(self) -> dict[str, int]:
        """Split `prompts_per_step` over the domains by weight (largest remainder)."""
        return split_by_weight(self.generation.prompts_per_step, {n: d.weight for n, d in self.domains.items()})


class ConfigError(ValueError):
    """A config that cannot be used; the message names each field and what to fix."""


def _where(loc: tuple) -> str:
    """The dotted field path of an error. Pydantic puts the member of a tagged union that it tried
    into the path (domains.algebra.math.suite); such tags are left out, found by walking the
    config's types along the path."""
    parts: list[str] = []
    ann: Any = CounterpointConfig
    for p in loc:
        if p == "[key]":
            continue
        ann, is_tag = _child_type(ann, p)
        if not is_tag:
            parts.append(str(p))
    return ".".join(parts) or "(top level)"


def _bare(ann: Any) -> Any:
    """`ann` without Annotated metadata and without a None member."""
    while True:
        if get_origin(ann) is Annotated:
            ann = get_args(ann)[0]
        elif get_origin(ann) in (Union, UnionType) and type(None) in get_args(ann):
            rest = [a for a in get_args(ann) if a is not type(None)]
            ann = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        else:
            return ann


def _child_type(ann: Any, part: Any) -> tuple[Any, bool]:
    """The type at path element `part` under `ann`, and whether `part` is a union member's tag."""
    ann = _bare(ann)
    origin = get_origin(ann)
    if origin in (Union, UnionType):
        for member in map(_bare, get_args(ann)):
            if not (isinstance(member, type) and issubclass(member, BaseModel)):
                continue
            literals = [f.annotation for f in member.model_fields.values() if get_origin(f.annotation) is Literal]
            tags = {member.__name__, *(v for lit in literals for v in get_args(lit))}
            if part in tags:
                return member, True
        return None, False
    if origin in (dict, Mapping):
        return get_args(ann)[1], False
    if origin in (list, tuple, Sequence):
        return get_args(ann)[0], False
    if isinstance(ann, type) and issubclass(ann, BaseModel) and part in ann.model_fields:
        return ann.model_fields[part].annotation, False
    return None, False


def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = _where(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if msg.startswith(f"{where}."):  # a validator of a mapping named the entry's field itself
            where, _, msg = msg.partition(": ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the default config for valid keys)"
        lines.append(
            f"  {where}: {msg}"
            + (f" (got {e['input']!r})" if e["type"] != "extra_forbidden" and not isinstance(e["input"], dict) else "")
        )
    return "invalid config:\n" + "\n".join(lines)


def config_from_dict(data: dict[str, Any]) -> CounterpointConfig:
    try:
        return CounterpointConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err)) from None


def default_config_path() -> Path:
    return Path(str(resources.files("counterpoint") / "configs" / "default.yaml"))


def shipped_config_path(name: str) -> Path | None:
    """The shipped config `name` (`smoke`, `default`, ...; with or without `.yaml`), if one exists."""
    if not name or "/" in name or name.startswith("."):
        return None
    path = default_config_path().with_name(name if name.endswith(".yaml") else f"{name}.yaml")
    return path if path.is_file() else None


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> CounterpointConfig:
    """Load a YAML config (the shipped default when `path` is None; a shipped config by its name,
    e.g. `smoke`, when no such file exists) and apply `a.b=value` overrides."""
    path = Path(path) if path else default_config_path()
    if not path.exists():
        path = shipped_config_path(str(path)) or path
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except _DuplicateKey as err:
        raise ConfigError(f"config file {path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of sections")
    for item in overrides:
        apply_override(data, item)
    return config_from_dict(data)


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error (safe_load keeps the
    last one silently: a second `domains.math` would replace the first)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                    f"(first on line {seen[key] + 1}); each key once per mapping"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set `a.b.c=value` in `data`; the value is parsed as YAML (so `3`, `true`, `null` work)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: write it as section.key=value")
    set_path(data, key, yaml.safe_load(raw))


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted `key` (`a.b.c`) in `data` to `value`, making sections on the way."""
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        if isinstance(node.get(part), str):  # a section given by its type alone: `policy=bwt`, then `policy.order=...`
            node[part] = type_shorthand(node[part])
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}={value!r}: {part} is not a section")
    node[leaf] = value


def resolved_json(config: CounterpointConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=False)

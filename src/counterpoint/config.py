"""The one typed config tree of a run, loaded from YAML.

Each package owns its slice (`rollout.config`, `trainer.config`, `cluster.config`); this module
assembles them, checks the rules that span slices, and turns validation errors into messages
that name the field to fix.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from counterpoint.cluster.config import ClusterConfig
from counterpoint.configbase import Section
from counterpoint.rollout.config import CodeSandboxConfig, DomainConfig, DomainName, GenerationConfig, RewardsConfig
from counterpoint.trainer.config import LearnerConfig, ModelConfig, ScheduleConfig


class RunSection(Section):
    name: str = Field("counterpoint", pattern=r"^[A-Za-z0-9_.-]+$")
    """Prefix of the run id; the run folder is `<output_dir>/<name>-<timestamp>`."""
    output_dir: Path = Path("runs")
    seed: int = 0
    steps: int = Field(40, ge=1)
    """RL steps to train."""
    eval_every_steps: int = Field(0, ge=0)
    """Evaluate on the held-out splits every N steps (0: only at the start and the end)."""
    checkpoint_every_steps: int = Field(20, ge=0)
    """Save a resumable checkpoint every N steps (0: only at the end)."""
    max_restarts: int = Field(2, ge=0)
    """Learner-rank failures survived by restarting the actors from the last checkpoint."""


class CounterpointConfig(Section):
    run: RunSection = RunSection()
    model: ModelConfig = ModelConfig()
    domains: dict[DomainName, DomainConfig] = Field(
        default_factory=lambda: {d: DomainConfig() for d in ("math", "code", "creative")}
    )
    """The task domains trained, each with its weight and eval split."""
    generation: GenerationConfig = GenerationConfig()
    code_sandbox: CodeSandboxConfig = CodeSandboxConfig()
    rewards: RewardsConfig = RewardsConfig()
    learner: LearnerConfig = LearnerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    cluster: ClusterConfig = ClusterConfig()

    @model_validator(mode="after")
    def _check_sizes(self) -> "CounterpointConfig":
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
        from counterpoint.rollout.tasks.suites import SUITES

        for name, domain in self.domains.items():
            if domain.suite not in SUITES[name]:
                raise ValueError(f"domains.{name}.suite: unknown suite {domain.suite!r} (known: {', '.join(SUITES[name])})")
        if self.rewards.creative.judge_weight > 0 and self.rewards.creative.judge is None:
            raise ValueError("rewards.creative.judge: required when rewards.creative.judge_weight is above 0")
        for name in self.learner.per_domain:
            if name not in self.domains:
                raise ValueError(f"learner.per_domain.{name}: not a configured domain (domains: {', '.join(self.domains)})")
        self._check_schedule()
        sequences = self.prompts_per_domain()
        if sum(sequences.values()) * self.generation.samples_per_prompt < self.learner.ranks:
            raise ValueError(
                "learner.ranks: more ranks than sequences per step; raise "
                "generation.prompts_per_step or lower learner.ranks"
            )
        return self

    def _check_schedule(self) -> None:
        from counterpoint.trainer.curriculum_stages import ScheduleError

        sched = self.schedule
        if sched.policy in ("sequential", "bwt") and sched.order is not None:
            unknown = [d for d in sched.order if d not in self.domains]
            if unknown:
                raise ValueError(f"schedule.order: unknown domains {unknown} (domains: {', '.join(self.domains)})")
            if len(set(sched.order)) != len(sched.order):
                raise ValueError(f"schedule.order: a domain is listed twice: {sched.order}")
        if sched.policy == "bwt" and len(self.probe_domains()) < 2:
            raise ValueError("schedule.order: the bwt policy probes the transfer between two or more domains; "
                             f"got {self.probe_domains()}")
        if sched.policy == "stages" and not sched.stages:
            raise ValueError("schedule.stages: required (a non-empty list) when schedule.policy is 'stages'")
        try:
            stages = self.initial_stages()
        except ScheduleError as err:
            raise ValueError(f"schedule.{err}") from None
        for i, stage in enumerate(stages):
            unknown = [d for d in stage.domains if d not in self.domains]
            if unknown:
                raise ValueError(f"schedule.stages[{i}].domains: unknown domains {unknown} (domains: {', '.join(self.domains)})")

    def initial_stages(self, order: list[str] | None = None):
        """The schedule the run starts with. For the bwt policy, `order` is the order its
        transfer probes chose (without it: `schedule.order` as configured)."""
        return self.schedule.initial_stages({n: d.weight for n, d in self.domains.items()}, order)

    def probe_domains(self) -> list[str]:
        """The domains the bwt policy probes and orders."""
        return list(self.schedule.order or self.domains)

    def prompts_per_domain(self) -> dict[str, int]:
        """Split `prompts_per_step` over the domains by weight (largest remainder)."""
        return split_by_weight(
            self.generation.prompts_per_step, {n: d.weight for n, d in self.domains.items()}
        )


def split_by_weight(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer shares of `total` proportional to `weights`, summing exactly to `total`."""
    norm = sum(weights.values())
    exact = {k: total * w / norm for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (exact[k] - counts[k], weights[k]), reverse=True)
    for k in by_remainder[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


class ConfigError(ValueError):
    """A config that cannot be used; the message names each field and what to fix."""


def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"] if p != "[key]") or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the default config for valid keys)"
        lines.append(f"  {where}: {msg}" + (f" (got {e['input']!r})" if e["type"] != "extra_forbidden" and not isinstance(e["input"], dict) else ""))
    return "invalid config:\n" + "\n".join(lines)


def config_from_dict(data: dict[str, Any]) -> CounterpointConfig:
    try:
        return CounterpointConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err)) from None


def default_config_path() -> Path:
    return Path(str(resources.files("counterpoint") / "configs" / "default.yaml"))


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> CounterpointConfig:
    """Load a YAML config (the shipped default when `path` is None) and apply `a.b=value` overrides."""
    path = Path(path) if path else default_config_path()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of sections")
    for item in overrides:
        apply_override(data, item)
    return config_from_dict(data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set `a.b.c=value` in `data`; the value is parsed as YAML (so `3`, `true`, `null` work)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: write it as section.key=value")
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    node[leaf] = yaml.safe_load(raw)


def resolved_json(config: CounterpointConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=False)

"""The one registry of domain kinds: how each kind builds its `TaskDomain` (by suite) from a domain's
config slice, and whether its reward needs the code sandbox.

A domain is data: a user-chosen name and a config slice (`rollout.config.DomainConfig`) whose `kind`
picks the entry here. The domain object carries the name (its prompts do too, so metrics,
advantages and the schedule group by name) and knows its kind and suite. Two domains of one kind,
say `math` and `algebra` on another suite, need only config. Imports are lazy: a suite's module, and
any data package it reads, is loaded only when that suite is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from counterpoint.rollout.config import (
    DOMAIN_CONFIGS,
    CodeDomainConfig,
    CreativeDomainConfig,
    DomainConfig,
    MathDomainConfig,
    PythonDomainConfig,
    SandboxConfig,
)
from counterpoint.rollout.tasks.base import TaskDomain, TaskSource


def _suite(module: str, cls: str) -> Callable[..., TaskDomain]:
    """A suite's constructor `(reward, *, name) -> TaskDomain`, imported on first use."""

    def build(reward: Any, *, name: str) -> TaskDomain:
        return getattr(importlib.import_module(f"counterpoint.rollout.tasks.{module}"), cls)(reward, name=name)

    build.__qualname__ = f"{module}.{cls}"
    return build


@dataclass(frozen=True)
class Kind:
    """One kind of domain: its config slice type, its suites, and what its reward needs."""

    name: str
    config: type
    """The config slice class (`MathDomainConfig`, ...); its `suite` field lists the same suites."""
    suites: Mapping[str, Callable[..., TaskDomain]]
    """suite → constructor `(reward section, *, name)`; "synthetic" first, sized for the tiny model."""
    sandbox: Callable[[Any], SandboxConfig] | None = None
    """The sandbox limits of a domain of this kind (None: its reward runs no code)."""

    @property
    def needs_sandbox(self) -> bool:
        return self.sandbox is not None

    def build(self, name: str, cfg: Any, import_path: list[str] | None = None) -> TaskDomain:
        if cfg.source is not None:  # the user's rows, scored as this kind scores
            from counterpoint.rollout.tasks.files import FILE_DOMAINS

            extra = {"import_path": import_path} if self.name == "python" else {}
            return FILE_DOMAINS[self.name](cfg.reward, name=name, source=cfg.source, **extra)
        return self.suites[cfg.suite](cfg.reward, name=name)


KINDS: dict[str, Kind] = {
    "math": Kind(
        "math",
        MathDomainConfig,
        {
            "synthetic": _suite("math", "MathDomain"),
            "gsm": _suite("math", "GsmDomain"),
            "champ": _suite("math", "ChampDomain"),
        },
    ),
    "code": Kind(
        "code",
        CodeDomainConfig,
        {
            "synthetic": _suite("code", "CodeDomain"),
            "humaneval": _suite("humaneval", "HumanEvalDomain"),
        },
        sandbox=lambda cfg: cfg.reward.sandbox,
    ),
    "creative": Kind(
        "creative",
        CreativeDomainConfig,
        {
            "synthetic": _suite("creative", "CreativeDomain"),
            "writingbench": _suite("writingbench", "WritingBenchDomain"),
        },
    ),
    "python": Kind("python", PythonDomainConfig, {}),  # the user's rows and reward function only
}
"""kind → `Kind`. A new kind is a config class in `rollout/config.py` (in the `DomainConfig`
union) and an entry here."""


def domain_config(name: str, cfg: DomainConfig | Mapping[str, Any] | None = None) -> DomainConfig:
    """The validated config slice of domain `name`: `cfg` as it is, a raw mapping validated (its
    `kind` defaulting to the name when the name is a kind), or all defaults when `cfg` is None and
    the name is a kind."""
    if cfg is not None and not isinstance(cfg, Mapping):
        return cfg
    data = dict(cfg or {})
    if "kind" not in data and name not in DOMAIN_CONFIGS:
        raise ValueError(f"domain {name!r}: its kind is required (one of {', '.join(KINDS)}), since the name is none")
    kind = data.setdefault("kind", name)
    if kind not in DOMAIN_CONFIGS:
        raise ValueError(f"domain {name!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    return DOMAIN_CONFIGS[kind].model_validate(data)


def kind_of(cfg: DomainConfig) -> Kind:
    return KINDS[cfg.kind]


def build_domain(
    name: str, cfg: DomainConfig | Mapping[str, Any] | None = None, import_path: list[str] | None = None
) -> TaskDomain:
    """The `TaskDomain` of domain `name` from its config slice (None: the defaults of the kind
    `name`). Cheap: checker processes, the sandbox check and a judge start on first scoring or at
    a reward worker's `warm_up`, so a driver that only draws prompts starts none of them.
    `import_path`: folders a python kind's reward function is imported from (before PYTHONPATH)."""
    cfg = domain_config(name, cfg)
    return kind_of(cfg).build(name, cfg, import_path)


def task_source(name: str, cfg: DomainConfig | Mapping[str, Any] | None, seed: int) -> TaskSource:
    """The prompts of domain `name`: its `TaskDomain` behind a seeded cursor, with the held-out
    split of `cfg.eval.prompts` prompts (a file source: its rows, read here, in the driver)."""
    cfg = domain_config(name, cfg)
    if cfg.source is not None:
        from counterpoint.rollout.tasks.files import RowSource

        return RowSource(build_domain(name, cfg), seed, cfg.eval.prompts)
    return TaskSource(build_domain(name, cfg), seed, cfg.eval.prompts)


def check_sources(domains: Mapping[str, DomainConfig], import_path: list[str] | None = None) -> None:
    """Read and check every domain's rows and import every reward function, as the run will, so a
    missing file, a misnamed field, an empty split or a function that does not import fails here
    (a `DataError` naming the field), before any actor starts."""
    from counterpoint.rollout.data import DataError, load_rows

    for name, cfg in domains.items():
        if cfg.source is not None:
            load_rows(f"domains.{name}.source", cfg.kind, cfg.source)
        if cfg.kind == "python":
            from counterpoint.rollout.rewards.plugin import PluginImportError, check_plugin

            try:
                check_plugin(cfg.reward, import_path)
            except PluginImportError as err:
                raise DataError(f"domains.{name}.reward.function: {err}") from None


def sandbox_limits(cfg: DomainConfig) -> SandboxConfig | None:
    """The sandbox limits a domain's reward runs code under (None: it runs none)."""
    kind = kind_of(cfg)
    return kind.sandbox(cfg) if kind.sandbox else None


def kinds_of(domains: Mapping[str, DomainConfig]) -> list[str]:
    """The distinct kinds of the configured domains, in the registry's order (math, code, creative)."""
    present = {cfg.kind for cfg in domains.values()}
    return [kind for kind in KINDS if kind in present]

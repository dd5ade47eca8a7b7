"""The records of a curriculum: stages, their domains, advance rules and weighting, the audit
entry, and the errors a schedule change can raise.

Pure: pydantic and the standard library. The live schedule that uses them is `state.py`; the plan
of one step is `plan.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, ValidationInfo, field_validator

from counterpoint.configbase import Section
from counterpoint.trainer.curriculum.metric_names import check_rule_metric
from counterpoint.trainer.curriculum.plan import StageKind

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""Stage and domain names: letters, digits, `_ . -`, at most 64 characters."""
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
MAX_STAGES = 64


class ScheduleError(ValueError):
    """A schedule change that cannot be applied; `field` names what to fix (HTTP 422)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message

    def __reduce__(self):  # pickle by the constructor's arguments, so it crosses Ray actor calls intact
        return type(self), (self.field, self.message)


class UnknownName(ScheduleError):
    """A stage or domain that a request addresses does not exist (HTTP 404)."""


class ScheduleConflict(ScheduleError):
    """A well-formed change the run's state refuses: a finished run or stage (HTTP 409)."""


class StaleVersion(ScheduleConflict):
    """The change was based on an older schedule version than the current one (HTTP 409)."""

    def __init__(self, base_version: int, current_version: int):
        super().__init__(
            "base_version",
            f"the schedule is at version {current_version}, not {base_version}; read it again and re-apply your change",
        )
        self.base_version, self.current_version = base_version, current_version

    def __reduce__(self):
        return type(self), (self.base_version, self.current_version)


class DomainSetting(Section):
    weight: float = Field(1.0, ge=0.0, allow_inf_nan=False, examples=[1.0])
    """Relative share of the stage's prompts (≥ 0, finite; 0 keeps the domain listed but off).
    Weights are normalised over the stage's domains when a step is planned."""
    entropy_target: float | None = Field(None, ge=0.0, allow_inf_nan=False, examples=[0.2])
    """Entropy budget (mean token entropy, nats). The learner's per-domain entropy controller aims
    at it; while the domain's measured entropy is below it, the stage multiplies the domain's
    weight by `below_entropy_target_factor`. null: no budget."""


class StepsRule(Section):
    """Advance after the stage has trained `steps` steps."""

    type: Literal["steps"] = "steps"
    """The rule's kind."""
    steps: int = Field(ge=1, le=10_000_000)
    """Steps to train in this stage."""


class PlateauRule(Section):
    """Advance when a domain's metric has not improved by more than `min_delta` over the best value
    seen before the last `window` steps (needs more than `window` observations)."""

    type: Literal["plateau"] = "plateau"
    """The rule's kind."""
    domain: Name
    """The domain watched; it must be one of the stage's domains."""
    metric: MetricName = "reward_mean"
    """The per-domain metric watched: a number of the driver's per-domain step metrics
    (`trainer/curriculum/metric_names.py`); an unknown name is refused, with the close ones."""
    window: int = Field(20, ge=1, le=1000)
    """Steps without enough improvement before the stage advances."""
    min_delta: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    """Improvement that counts as progress (in the metric's units)."""
    mode: Literal["max", "min"] = "max"
    """"max": higher is better (rewards); "min": lower is better (losses)."""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        return check_rule_metric(name)


class EntropyRule(Section):
    """Advance when a domain's entropy has been past `threshold` for `consecutive_steps` steps."""

    type: Literal["entropy"] = "entropy"
    """The rule's kind."""
    domain: Name
    """The domain watched; it must be one of the stage's domains."""
    threshold: float = Field(allow_inf_nan=False)
    """Entropy level (nats) that ends the stage."""
    direction: Literal["below", "above"] = "below"
    """Advance when the entropy is strictly below (or above) the threshold."""
    metric: MetricName = "entropy_mean"
    """The per-domain metric watched (`trainer/curriculum/metric_names.py`; an unknown name is
    refused, with the close ones)."""
    consecutive_steps: int = Field(1, ge=1, le=1000)
    """How many steps in a row the condition must hold."""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        return check_rule_metric(name)


class ManualRule(Section):
    """Advance only when an operator says so (POST /v1/runs/{run_id}/advance)."""

    type: Literal["manual"] = "manual"
    """The rule's kind."""


AdvanceRule = Annotated[StepsRule | PlateauRule | EntropyRule | ManualRule, Field(discriminator="type")]


class FixedWeighting(Section):
    """Use the stage's domain weights as they are."""

    type: Literal["fixed"] = "fixed"
    """The weighting's kind."""


class DumpWeighting(Section):
    """Multiply each domain's weight by its DUMP UCB probability (arXiv 2504.09710), from the mean
    |advantage| of its recent samples; then normalise."""

    type: Literal["dump"] = "dump"
    """The weighting's kind."""
    window: int = Field(300, ge=1, le=100_000)
    """Samples of |A| kept per domain."""
    c: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    """Exploration coefficient."""
    tau: float = Field(0.1, gt=0.0, allow_inf_nan=False)
    """Softmax temperature."""


WEIGHTINGS = (FixedWeighting, DumpWeighting)
Weighting = Annotated[FixedWeighting | DumpWeighting, Field(discriminator="type")]


class Stage(Section):
    """One stage of the curriculum. Example: structured domains first, then creative."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "structured",
                    "kind": "rl",
                    "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0, "entropy_target": 0.3}},
                    "advance": {
                        "type": "plateau",
                        "domain": "math",
                        "metric": "reward_mean",
                        "window": 20,
                        "min_delta": 0.01,
                    },
                }
            ]
        }
    )

    name: Name
    """Unique within the schedule."""
    kind: StageKind = StageKind.RL
    """"rl": policy-gradient steps; "sft": supervised steps on diverse demonstrations of the domains."""
    domains: dict[Name, DomainSetting] = Field(min_length=1, max_length=32)
    """The domains trained in this stage and their settings; at least one weight above 0."""
    advance: AdvanceRule = ManualRule()
    """When the stage ends and the next one starts."""
    weighting: Weighting = FixedWeighting()
    """How the stage turns its weights into each step's domain shares."""
    below_entropy_target_factor: float = Field(0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    """Weight multiplier for a domain whose entropy is below its `entropy_target` (1: rule off)."""
    paused: bool = False
    """A paused stage holds the run when it is the active stage (the driver waits)."""

    @field_validator("domains")
    @classmethod
    def _some_weight(cls, domains: dict[str, DomainSetting]) -> dict[str, DomainSetting]:
        if domains and not any(s.weight > 0 for s in domains.values()):
            raise ValueError("all weights are zero; give at least one domain a weight above 0")
        return domains

    @field_validator("advance")
    @classmethod
    def _rule_domain_in_stage(cls, rule, info: ValidationInfo):
        domains = info.data.get("domains")
        if domains is not None and getattr(rule, "domain", None) is not None and rule.domain not in domains:
            raise ValueError(f"advance.domain {rule.domain!r} is not one of this stage's domains: {', '.join(domains)}")
        return rule


class StageProgress(BaseModel):
    """Where a stage stands; owned by the run, never set by an operator."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    status: Literal["pending", "active", "finished"] = "pending"
    steps: int = 0
    """Steps trained in this stage."""
    started_at_step: int | None = None
    finished_at_step: int | None = None
    series_key: str | None = None
    """Which `domain/metric` the rule's series below tracks (reset when the rule changes)."""
    series: list[float] = []
    """Plateau rule: the last `window` values; entropy rule: unused."""
    best_before_window: float | None = None
    streak: int = 0
    """Entropy rule: consecutive steps past the threshold."""
    dump: dict | None = None
    """DUMP sampler state when the stage uses DUMP weighting."""


class AuditEntry(Section):
    version: int
    """The schedule version this change created."""
    time: str
    """When, ISO 8601 UTC."""
    author: str
    """The operator's token name; `config` or `bwt-probe` for the initial schedule, `schedule` for
    a rule that advanced a stage, `driver` for the finish, `resume` for a reopen or a rewind."""
    action: str
    """create, replace, pause, resume, set_domain, advance, finish, reopen, rewind (a resumed run put
    the schedule back as its checkpoint left it)."""
    reason: str = ""
    """Why, as the author gave it (or the rule that fired)."""
    step: int
    """The last step reported when the change was made; it applies from the next plan."""
    detail: dict[str, Any] = {}
    """What changed: the stage and domain, values before and after, the new order."""


def parse_stages(data: Sequence[Any]) -> list[Stage]:
    """Stages from plain data (JSON, YAML), with errors naming the field, e.g. `stages[1].domains`
    or `stages[0].advance.metric` (without the member tag pydantic puts in a union's path)."""
    out = []
    for i, item in enumerate(data):
        try:
            out.append(item if isinstance(item, Stage) else Stage.model_validate(item))
        except ValidationError as err:
            first = err.errors()[0]
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in _untagged(first["loc"]))
            raise ScheduleError(f"stages[{i}]{where}", first["msg"].removeprefix("Value error, ")) from None
    return out


def _untagged(loc: Sequence) -> list:
    """A stage error's path without the tag of the chosen advance rule or weighting."""
    tags = {"advance": set(RULE_CHECKS), "weighting": {w.model_fields["type"].default for w in WEIGHTINGS}}
    return [p for k, p in enumerate(loc) if not (k and isinstance(p, str) and p in tags.get(loc[k - 1], ()))]


# --- advance rules -------------------------------------------------------------------------------


def metric_value(metrics: Mapping[str, Mapping[str, Any]], domain: str, key: str) -> float | None:
    value = metrics.get(domain, {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _check_plateau(rule: PlateauRule, prog: StageProgress, metrics) -> str | None:
    key = f"{rule.domain}/{rule.metric}"
    if prog.series_key != key:
        prog.series_key, prog.series, prog.best_before_window = key, [], None
    value = metric_value(metrics, rule.domain, rule.metric)
    if value is None:
        return None
    better = max if rule.mode == "max" else min
    prog.series.append(value)
    while len(prog.series) > rule.window:
        old = prog.series.pop(0)
        prog.best_before_window = old if prog.best_before_window is None else better(prog.best_before_window, old)
    if prog.best_before_window is None:
        return None
    gain = better(prog.series) - prog.best_before_window
    gain = gain if rule.mode == "max" else -gain
    if gain <= rule.min_delta:
        return f"plateau: {key} improved by {gain:.6g} (≤ {rule.min_delta:g}) over the last {rule.window} steps"
    return None


def _check_entropy(rule: EntropyRule, prog: StageProgress, metrics) -> str | None:
    value = metric_value(metrics, rule.domain, rule.metric)
    if value is None:
        return None
    past = value < rule.threshold if rule.direction == "below" else value > rule.threshold
    prog.streak = prog.streak + 1 if past else 0
    if prog.streak >= rule.consecutive_steps:
        return (
            f"entropy: {rule.domain}/{rule.metric} = {value:.6g} {rule.direction} {rule.threshold:g} "
            f"for {prog.streak} step(s)"
        )
    return None


def _check_steps(rule: StepsRule, prog: StageProgress, metrics) -> str | None:
    return f"steps: trained {prog.steps} of {rule.steps} steps" if prog.steps >= rule.steps else None


RULE_CHECKS: dict[str, Callable[[Any, StageProgress, Mapping], str | None]] = {
    "steps": _check_steps,
    "plateau": _check_plateau,
    "entropy": _check_entropy,
    "manual": lambda *_: None,
}
"""Advance-rule type → check(rule, progress, metrics) returning why to advance, or None."""

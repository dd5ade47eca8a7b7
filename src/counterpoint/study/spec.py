"""A study: a base config, named conditions (config overrides), seeds and steps, and the claims
its report judges. Shipped studies are YAML files in `counterpoint/study/studies/`; a user's own
is any YAML file of the same shape (`counterpoint study run my_study.yaml`).

    name: controls
    description: ...
    config: default              # the base: a shipped config's name, or a path next to the study
    set: {learner.mini_batches: 2}        # overrides of every run (dotted keys)
    steps: 60
    seeds: [0, 1, 2]
    conditions:
      none: {description: no control}
      entropy_bonus: {set: {learner.per_domain.creative.entropy.coef: 0.01}}
    claims:
      - claim: a control preserves creative range
        any: [...]                       # tests: see `ClaimTest`

Every run's config is the base, then `set`, then the condition's `set`, then `run.seed` and
`run.steps`; a string value `${steps}` or `${steps/N}` is the study's steps (divided by N), so
stage lengths follow `--steps`. Pure: pydantic, yaml and counterpoint.config.
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from counterpoint.config import ConfigError, config_from_dict, set_path, shipped_config_path

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
HOLD_EQUAL = (
    "learner.mini_batches",
    "learner.epochs",
    "learner.learning_rate",
    "generation.prompts_per_step",
    "generation.samples_per_prompt",
    "generation.temperature",
    "run.steps",
)
"""What every condition of a comparison keeps equal unless the study says otherwise: the number of
optimizer steps per rollout, the learning rate and the batch (so a difference is the condition's)."""
PICKED = ".picked"
"""A claim's `condition` or `than` of `<best_of condition>.picked` is the condition it took its
overrides from (so the structured-first run of the best control is compared with that control)."""
_STEPS = re.compile(r"^\$\{steps(?:\s*/\s*(\d+))?\}$")


class StudyError(ValueError):
    """A study that cannot be run as written; the message names the field to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimTest(_Strict):
    """One measurable statement about the study's runs, judged over seeds (study/verdicts.py).

    - `change`: end minus start of the metric in `condition`, per seed; `expect` up or down past `margin` (0).
    - `difference`: `condition` minus `than`, paired by seed, at the end; `expect` greater or
      less than `margin` (e.g. math within 5 points: greater than -0.05).
    - `at_least` / `at_most`: the metric at the end of `condition` against `value`.
    - `all` / `any`: a group of tests (every one held / one held)."""

    test: Literal["change", "difference", "at_least", "at_most", "all", "any"]
    """The kind of test."""
    condition: str | None = None
    """The condition whose runs are judged (`<best_of condition>.picked`: the one it chose)."""
    metric: str | None = None
    """`<domain>.<measure>` (e.g. `math.accuracy`, `creative.distinct_2`, `code.entropy`) or `score`."""
    expect: Literal["up", "down", "greater", "less"] | None = None
    """The direction the claim predicts."""
    than: str | None = None
    """`difference`: the condition subtracted."""
    margin: float = 0.0
    """`difference` / `change`: the threshold the paired difference or the change is compared with."""
    value: float | None = None
    """`at_least` / `at_most`: the threshold."""
    tests: list[ClaimTest] = Field(default_factory=list)
    """`all` / `any`: the tests of the group."""

    @model_validator(mode="after")
    def _complete(self) -> ClaimTest:
        need = {
            "change": ("condition", "metric", "expect"),
            "difference": ("condition", "metric", "expect", "than"),
            "at_least": ("condition", "metric", "value"),
            "at_most": ("condition", "metric", "value"),
            "all": (),
            "any": (),
        }[self.test]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a `{self.test}` test needs {', '.join(missing)}")
        if self.test in ("all", "any") and not self.tests:
            raise ValueError(f"an `{self.test}` test needs a non-empty `tests` list")
        if self.test == "change" and self.expect not in ("up", "down"):
            raise ValueError("a `change` test expects `up` or `down`")
        if self.test == "difference" and self.expect not in ("greater", "less"):
            raise ValueError("a `difference` test expects `greater` or `less`")
        return self

    def conditions(self) -> set[str]:
        own = {c for c in (self.condition, self.than) if c}
        return own.union(*(t.conditions() for t in self.tests))


class Claim(_Strict):
    """A seed claim the report gives a verdict on: held, did not hold, or inconclusive."""

    claim: str
    """The claim in words, as the report's verdict table prints it."""
    source: str = ""
    """Where the claim comes from (a paper, docs/research.md section 7)."""
    test: ClaimTest
    """How the claim is judged; usually an `all` or `any` group."""


class KeepWithin(_Strict):
    metric: str
    """The metric guarded, e.g. `math.accuracy`."""
    of: str
    """The condition it is compared with, paired by seed."""
    points: float = Field(gt=0)
    """How much lower its mean paired difference may be (0.05: five points of accuracy)."""


class BestOf(_Strict):
    """The condition is another one's overrides plus its own: the one of `conditions` with the
    highest mean `score` over seeds (among those whose `keep_within` metric stays within `points`
    of condition `of`, paired by seed), chosen when they have all finished."""

    conditions: list[str] = Field(min_length=1)
    """The candidates."""
    score: str
    """The metric whose mean over seeds picks the candidate (higher is better)."""
    keep_within: KeepWithin | None = None
    """A metric the pick may not lose more than `points` of against condition `of`."""

    def needs(self) -> set[str]:
        """The conditions the choice is made from."""
        return set(self.conditions) | ({self.keep_within.of} if self.keep_within else set())


class Condition(_Strict):
    description: str = ""
    """What the condition is, in a sentence (the report prints it)."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Config overrides, dotted keys (e.g. `domains.creative.reward.type: preference`)."""
    best_of: BestOf | None = None
    """Take another condition's overrides, the best by a measure, once the others have run."""


class StudySpec(_Strict):
    name: Name
    """The study's name (a study folder's default is runs/study-<name>)."""
    description: str = ""
    """What it compares, in a paragraph (the report prints it)."""
    config: str | None = None
    """The base config: a shipped config's name (default, smoke, ...) or a YAML path, relative to
    the study file; None: the shipped default."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Overrides of every run."""
    steps: int = Field(ge=1, le=100_000)
    """Steps of every run (`run.steps`)."""
    seeds: list[int] = Field(min_length=1)
    """`run.seed` of each run of a condition."""
    conditions: dict[Name, Condition] = Field(min_length=1)
    """The conditions by name, in the order the report lists them."""
    hold_equal: list[str] = Field(default_factory=lambda: list(HOLD_EQUAL))
    """Resolved config fields every condition must share (a condition that changes one is refused)."""
    claims: list[Claim] = Field(default_factory=list)
    """The claims the report gives a verdict on."""
    base_dir: str | None = Field(None, exclude=True)
    """The study file's folder (where a relative `config` path is looked up); not part of the spec."""

    @model_validator(mode="after")
    def _references(self) -> StudySpec:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: a seed is listed twice: {self.seeds}")
        names = set(self.conditions)
        for name, cond in self.conditions.items():
            if cond.best_of:
                refs = cond.best_of.needs()
                unknown = refs - names
                if unknown:
                    raise ValueError(f"conditions.{name}.best_of: unknown conditions {sorted(unknown)}")
                if any(self.conditions[c].best_of for c in refs):
                    raise ValueError(f"conditions.{name}.best_of: it may not refer to another best_of condition")
        picked = {f"{n}{PICKED}" for n, c in self.conditions.items() if c.best_of}
        for i, claim in enumerate(self.claims):
            unknown = claim.test.conditions() - names - picked
            if unknown:
                raise ValueError(f"claims[{i}] ({claim.claim!r}): unknown conditions {sorted(unknown)}")
        return self

    def ordered(self) -> list[str]:
        """Conditions in run order: the plain ones as written, then the `best_of` ones."""
        plain = [n for n, c in self.conditions.items() if not c.best_of]
        return plain + [n for n, c in self.conditions.items() if c.best_of]

    def fingerprint(self) -> str:
        """What the runs depend on, as canonical JSON: a study folder holds the runs of one, and
        refuses another. The words (descriptions) and the claims are left out: they only change
        the report, so a study's claims can be revised and judged on the runs already made."""
        return fingerprint(self.model_dump(mode="json"))


def fingerprint(data: dict) -> str:
    """`StudySpec.fingerprint` of a spec's JSON data."""
    runs = {k: v for k, v in data.items() if k not in ("description", "claims")}
    runs["conditions"] = {n: {k: v for k, v in c.items() if k != "description"} for n, c in data["conditions"].items()}
    return json.dumps(runs, sort_keys=True)


def studies_dir() -> Path:
    return Path(str(resources.files("counterpoint") / "study" / "studies"))


def shipped_studies() -> dict[str, Path]:
    """The studies that ship in the package, by name."""
    return {p.stem: p for p in sorted(studies_dir().glob("*.yaml"))}


def load_study(name_or_path: str) -> StudySpec:
    """A shipped study by name, or a study YAML file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        shipped = shipped_studies().get(name_or_path)
        if shipped is None:
            raise StudyError(
                f"no study {name_or_path!r}: not a file, and the shipped studies are {', '.join(shipped_studies())}"
            )
        path = shipped
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise StudyError(f"study file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise StudyError(f"study file {path}: the top level must be a mapping (name, steps, seeds, conditions)")
    return parse_study(data, base_dir=path.parent)


def parse_study(data: dict, base_dir: Path | None = None) -> StudySpec:
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as err:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()]
        raise StudyError("the study is not valid:\n" + "\n".join(lines)) from None
    spec.base_dir = str(base_dir) if base_dir else None
    return spec


def with_changes(
    spec: StudySpec,
    steps: int | None = None,
    seeds: list[int] | None = None,
    only: list[str] | None = None,
    overrides: list[str] = (),
) -> StudySpec:
    """The spec with the command line's changes: other steps or seeds, a subset of conditions,
    extra `KEY=VALUE` overrides for every run."""
    data = spec.model_dump(mode="python")
    if steps is not None:
        data["steps"] = steps
    if seeds:
        data["seeds"] = list(seeds)
    if only:
        unknown = [c for c in only if c not in spec.conditions]
        if unknown:
            raise StudyError(f"--only: unknown conditions {unknown} (the study has {', '.join(spec.conditions)})")
        keep = set(only)
        for c in only:  # a best_of condition needs the ones it chooses among
            best = spec.conditions[c].best_of
            if best:
                keep |= best.needs()
        data["conditions"] = {n: c for n, c in data["conditions"].items() if n in keep}
        data["claims"] = [
            c
            for c in data["claims"]
            if {n.removesuffix(PICKED) for n in Claim.model_validate(c).test.conditions()} <= keep
        ]
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise StudyError(f"--set {item!r}: write it as section.key=value")
        data["set"][key] = yaml.safe_load(raw)
    return parse_study(data, Path(spec.base_dir) if spec.base_dir else None)


def _substitute(value: Any, steps: int) -> Any:
    if isinstance(value, str):
        m = _STEPS.match(value.strip())
        if m:
            return steps // int(m.group(1)) if m.group(1) else steps
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, steps) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, steps) for v in value]
    return value


def base_config_data(spec: StudySpec) -> dict:
    """The base config file's mapping (before any override)."""
    if spec.config is None:
        path = shipped_config_path("default")
    else:
        local = Path(spec.base_dir or ".") / spec.config
        path = local if local.is_file() else shipped_config_path(spec.config)
        if path is None:
            raise StudyError(f"config: {spec.config!r} is neither a file next to the study nor a shipped config")
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise StudyError(f"config: {path} does not hold a mapping of sections")
    return data


def run_config_data(spec: StudySpec, condition: str, seed: int, chosen: dict[str, str] | None = None) -> dict:
    """The config of one (condition, seed) run, as a mapping `counterpoint run --config` takes.
    `chosen` maps a `best_of` condition to the condition it was resolved to."""
    cond = spec.conditions[condition]
    data = copy.deepcopy(base_config_data(spec))
    layers = [spec.set]
    if cond.best_of:
        picked = (chosen or {}).get(condition)
        if picked is None:
            raise StudyError(f"conditions.{condition}: its best_of is resolved only once its candidates have finished")
        layers.append(spec.conditions[picked].set)
    layers.append(cond.set)
    for layer in layers:
        for key, value in layer.items():
            try:
                set_path(data, key, _substitute(copy.deepcopy(value), spec.steps))
            except ConfigError as err:
                raise StudyError(f"conditions.{condition}.set: {err}") from None
    set_path(data, "run.seed", seed)
    set_path(data, "run.steps", spec.steps)
    return data


def resolved(spec: StudySpec, condition: str, seed: int, chosen: dict[str, str] | None = None) -> dict:
    """The run's resolved config as JSON data; a config error names the condition."""
    try:
        return config_from_dict(run_config_data(spec, condition, seed, chosen)).model_dump(mode="json")
    except ConfigError as err:
        raise StudyError(f"condition {condition!r} (seed {seed}) does not make a valid config: {err}") from None


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def differences(spec: StudySpec, chosen: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Per condition, the resolved fields it sets to another value than the first condition (seed
    aside; fields of the reference's that the condition's config does not have are left out: a
    section of another type has other fields)."""
    seed = spec.seeds[0]
    names = [n for n in spec.ordered() if not spec.conditions[n].best_of or (chosen or {}).get(n)]
    flat = {n: flatten(resolved(spec, n, seed, chosen)) for n in names}
    base = flat[names[0]]
    out = {}
    for n in names:
        out[n] = {k: v for k, v in sorted(flat[n].items()) if (base[k] != v if k in base else v is not None)}
    return out


def check_study(spec: StudySpec) -> None:
    """Every plain condition makes a valid config, and they all hold `hold_equal` equal."""
    seed = spec.seeds[0]
    values: dict[str, dict[str, Any]] = {}
    for name in spec.ordered():
        if spec.conditions[name].best_of:
            for picked in spec.conditions[name].best_of.conditions:  # every possible resolution is valid
                flat = flatten(resolved(spec, name, seed, {name: picked}))
                values[f"{name} (as {picked})"] = {k: flat.get(k) for k in spec.hold_equal}
            continue
        flat = flatten(resolved(spec, name, seed))
        values[name] = {k: flat.get(k) for k in spec.hold_equal}
    first, ref = next(iter(values.items()))
    for name, held in values.items():
        for key in spec.hold_equal:
            if held[key] != ref[key]:
                raise StudyError(
                    f"conditions.{name.split(' ')[0]}: changes {key} ({ref[key]!r} in {first}, {held[key]!r} here), "
                    "which the study holds equal across conditions; change it in every condition, or remove it "
                    "from hold_equal and say why in the description"
                )

"""What a study measured: each run's start and end figures and curves, and their mean with a 95%
interval over seeds per condition. Pure: reads run folders, computes numbers.

A metric is `<domain>.<measure>`:
- from the held-out evaluations (first and last): `accuracy` (pass@1 when sampled), `pass@k`
  (the largest k measured), `reward`, `distinct_2`, `semantic_diversity` (MiniLM), `vendi`;
- from the training steps in which the domain trained (mean of the first and the last `WINDOW`):
  `entropy` (mean token entropy), `train_distinct_2`, `train_reward`;
- from the run's summary (end only): `bwt`, `fwt` (staged runs; also without a domain: their
  mean over domains) and `law_error` (the entropy-performance law's mean absolute error on the
  held-out later evaluations);
and `score`, the mean over domains of accuracy (math, code) or reward (creative).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

WINDOW = 5
"""Training steps averaged for a start or end value (token entropy moves step to step); a run
of fewer than 2 × WINDOW steps in the domain averages half its steps each."""
T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
}
"""Two-sided 95% Student t quantiles by degrees of freedom (1.96 beyond)."""
EVAL_MEASURES = {
    "accuracy": "accuracy",
    "reward": "reward_mean",
    "distinct_2": "distinct_2",
    "semantic_diversity": "semantic_diversity",
    "vendi": "vendi",
}
TRAIN_MEASURES = {"entropy": "entropy_mean", "train_distinct_2": "distinct_2", "train_reward": "reward_mean"}
CURVES = ("entropy_mean", "reward_mean", "distinct_2")
"""Per-step training measures kept as curves, per domain."""


@dataclass
class Interval:
    mean: float
    half: float | None
    """Half-width of the 95% t-interval; None with one value."""
    n: int
    values: list[float] = field(default_factory=list)

    @property
    def low(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def high(self) -> float | None:
        return None if self.half is None else self.mean + self.half

    def text(self, digits: int = 3) -> str:
        if self.half is None:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.half:.{digits}f}"


def interval(values: list[float]) -> Interval | None:
    """Mean and 95% t-interval of the finite values; None when there are none."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return Interval(mean, None, 1, vals)
    t = T95.get(len(vals) - 1, 1.96)
    return Interval(mean, t * statistics.stdev(vals) / math.sqrt(len(vals)), len(vals), vals)


@dataclass
class RunResult:
    condition: str
    seed: int
    path: Path
    start: dict[str, float] = field(default_factory=dict)
    end: dict[str, float] = field(default_factory=dict)
    curves: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    """domain -> measure -> (step, value) of every training step the domain trained in."""
    eval_curves: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    """domain -> eval measure -> (step, value) at every evaluation."""
    seconds: float | None = None
    steps: int = 0


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _eval_figures(domain_record: dict) -> dict[str, float]:
    out = {}
    for name, key in EVAL_MEASURES.items():
        v = _num(domain_record.get(key))
        if v is not None:
            out[name] = v
    passes = sorted(
        (int(k[5:]), _num(v)) for k, v in domain_record.items() if k.startswith("pass@") and _num(v) is not None
    )
    if passes:
        out["pass@1"] = dict(passes).get(1, passes[0][1])
        out["pass@k"] = passes[-1][1]
        out["k"] = float(passes[-1][0])
    return out


def _headline(figures: dict[str, float]) -> float | None:
    return figures.get("accuracy", figures.get("reward"))


def load_run(condition: str, seed: int, path: Path) -> RunResult:
    """The figures of one finished run folder."""
    records = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").exists() else {}
    result = RunResult(condition, seed, path, seconds=_num(summary.get("seconds")))
    evals = [r for r in records if r["kind"] == "eval"]
    train = [r for r in records if r["kind"] == "train"]
    result.steps = max((r["step"] for r in train), default=0)
    if evals:
        for where, rec in (("start", evals[0]), ("end", evals[-1])):
            target = getattr(result, where)
            scores = []
            for domain, figures in rec["domains"].items():
                figs = _eval_figures(figures)
                for name, v in figs.items():
                    target[f"{domain}.{name}"] = v
                if _headline(figs) is not None:
                    scores.append(_headline(figs))
            if scores:
                target["score"] = statistics.fmean(scores)
        for rec in evals:
            for domain, figures in rec["domains"].items():
                for name, v in _eval_figures(figures).items():
                    result.eval_curves.setdefault(domain, {}).setdefault(name, []).append((rec["step"], v))
    for rec in train:
        for domain, figures in rec["domains"].items():
            if not figures.get("samples"):
                continue
            for key in CURVES:
                v = _num(figures.get(key))
                if v is not None:
                    result.curves.setdefault(domain, {}).setdefault(key, []).append((rec["step"], v))
    for domain, measures in result.curves.items():
        for name, key in TRAIN_MEASURES.items():
            points = [v for _, v in measures.get(key, [])]
            if len(points) >= 2:  # start and end never share a step: a short run averages fewer
                w = min(WINDOW, len(points) // 2)
                result.start[f"{domain}.{name}"] = statistics.fmean(points[:w])
                result.end[f"{domain}.{name}"] = statistics.fmean(points[-w:])
    for domain, fit in (summary.get("entropy_law") or {}).items():
        err = _num(((fit or {}).get("holdout") or {}).get("mean_abs_error"))
        if err is not None:
            result.end[f"{domain}.law_error"] = err
    transfer = summary.get("transfer") or {}
    for which in ("bwt", "fwt"):
        for domain, v in (transfer.get(which) or {}).items():
            if _num(v) is not None:
                result.end[f"{domain}.{which}"] = float(v)
        if _num(transfer.get(f"{which}_mean")) is not None:
            result.end[which] = float(transfer[f"{which}_mean"])
    return result


def values(runs: list[RunResult], metric: str, where: str = "end") -> dict[int, float]:
    """seed -> the metric (`end`, `start` or `change` = end - start) of each run that has it."""
    out = {}
    for r in runs:
        if where == "change":
            a, b = r.end.get(metric), r.start.get(metric)
            if a is not None and b is not None:
                out[r.seed] = a - b
        else:
            v = getattr(r, where).get(metric)
            if v is not None:
                out[r.seed] = v
    return out


def paired(a: list[RunResult], b: list[RunResult], metric: str) -> dict[int, float]:
    """seed -> a's end value minus b's, over the seeds both have."""
    va, vb = values(a, metric), values(b, metric)
    return {s: va[s] - vb[s] for s in sorted(set(va) & set(vb))}


def band(runs: list[RunResult], domain: str, key: str, eval_curve: bool = False) -> list[tuple[int, Interval]]:
    """Per step, the interval over the runs that have a value at that step."""
    by_step: dict[int, list[float]] = {}
    for r in runs:
        curves = r.eval_curves if eval_curve else r.curves
        for step, v in curves.get(domain, {}).get(key, []):
            by_step.setdefault(step, []).append(v)
    return [(s, interval(vs)) for s, vs in sorted(by_step.items())]


def metrics_of(runs: list[RunResult]) -> list[str]:
    """Every metric some run has at its end, domains first, in a stable order."""
    order = [
        "accuracy",
        "pass@1",
        "pass@k",
        "reward",
        "distinct_2",
        "semantic_diversity",
        "vendi",
        "entropy",
        "train_distinct_2",
        "train_reward",
        "law_error",
        "bwt",
        "fwt",
    ]
    keys = {k for r in runs for k in r.end if not k.endswith(".k")}
    rank = {m: i for i, m in enumerate(order)}

    def key(k: str):
        domain, _, measure = k.rpartition(".")
        return (domain or "~", rank.get(measure, 99), measure)

    return sorted(keys, key=key)

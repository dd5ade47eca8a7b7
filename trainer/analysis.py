"""Measures of a finished (or running) training run, computed from counts and metrics records.

Plain Python and numpy: no torch, no ray. Three families, each defined with its source:

pass@k (Chen et al., arXiv 2107.03374, eq. 1): of n sampled responses to one prompt, c are correct;
the unbiased estimate of the chance that at least one of k responses drawn without replacement is
correct is 1 − C(n−c, k) / C(n, k), in [0, 1]. A table averages it over prompts.

Entropy–performance law (Cui et al., arXiv 2505.22617): R = −a·exp(H) + b, H the mean token entropy
of the rollouts (nats), R the validation score. It is linear in x = exp(H) ≥ 1, so a and b come
from ordinary least squares; b − a is the score the law predicts at H = 0 (x = 1), the ceiling
reached once entropy is spent. a > 0 when the score rises as entropy falls.

Transfer across curriculum stages (GEM, Lopez-Paz & Ranzato, arXiv 1706.08840, §4): R[j][i] is the
score on domain i after training through stage j (row 0: before any training), T the last stage.
BWT_i = R[T][i] − R[stage(i)][i] (how much later stages changed domain i; negative = forgetting)
and FWT_i = R[first(i) − 1][i] − R[0][i] (how much earlier stages helped domain i before its own
training). Scores are in whatever units the domain reports (accuracy in [0, 1], else mean reward),
so compare or average domains only when their scales agree.

Metrics records are the dicts of a run's metrics.jsonl (`trainer.loop`): `{"kind": "train" | "eval",
"step": int, "domains": {domain: {"entropy_mean", "accuracy", "reward_mean", ...}}, ...}`, train
records carrying the learner's `entropy_mean`, eval records the held-out `accuracy` (None for
domains without a correct/wrong verdict) and `reward_mean`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# -- pass@k ---------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one prompt: n responses sampled, c of them correct, k ≤ n drawn.

    1 − C(n−c, k)/C(n, k), computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i) (the product form of the paper's
    numpy code, no large binomials); exactly 1.0 when n − c < k (every draw of k holds a correct one).
    Raises ValueError for non-integers, negatives, k < 1, k > n or c > n.
    """
    try:
        n, c, k = operator.index(n), operator.index(c), operator.index(k)
    except TypeError as err:
        raise ValueError(f"pass_at_k takes integers, got n={n!r}, c={c!r}, k={k!r}") from err
    if n < 0 or c < 0 or k < 0:
        raise ValueError(f"pass_at_k: counts must be non-negative, got n={n}, c={c}, k={k}")
    if k < 1 or k > n:
        raise ValueError(f"pass_at_k: k must be in 1..n, got k={k} with n={n}")
    if c > n:
        raise ValueError(f"pass_at_k: c={c} correct out of only n={n} responses")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def ks_for(n: int) -> list[int]:
    """The k reported for n samples per prompt: the powers of two 1, 2, 4, ... below n, then n
    itself (ks_for(6) = [1, 2, 4, 6], ks_for(8) = [1, 2, 4, 8]); [] for n = 0."""
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"ks_for: n must be non-negative, got {n}")
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n] if n else []


def pass_at_k_table(groups: Sequence[tuple[int, int]], ks: Iterable[int] | None = None) -> dict[str, float]:
    """{"pass@k": mean over prompts of pass_at_k(n, c, k)} for each k, keys in increasing k.

    `groups`: one (n, c) per prompt. `ks` defaults to ks_for(the largest n). When prompts have
    different n, each k averages only the prompts with n ≥ k (pass@k is undefined for the others),
    so different keys may average different prompts; a k that no prompt reaches is left out.
    Empty `groups` → {}.
    """
    groups = [(operator.index(n), operator.index(c)) for n, c in groups]
    if not groups:
        return {}
    ks = ks_for(max(n for n, _ in groups)) if ks is None else sorted(set(ks))
    table = {}
    for k in ks:
        values = [pass_at_k(n, c, k) for n, c in groups if n >= k]
        if values:
            table[f"pass@{k}"] = sum(values) / len(values)
    return table


# -- the entropy–performance law --------------------------------------------------------------------


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(a, b) of y ≈ −a·x + b, or None when x is constant (no slope to fit)."""
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx <= (1e-12 * float(np.abs(x).max())) ** 2 * len(x):
        return None
    slope = float(dx @ (y - y.mean())) / sxx
    return -slope, float(y.mean()) - slope * float(x.mean())


def fit_entropy_law(entropy: Sequence[float], score: Sequence[float], holdout_fraction: float = 0.2) -> dict | None:
    """Fit R = −a·exp(H) + b to paired points (entropy H_t, score R_t) in run order.

    Returns {"a", "b", "r2", "ceiling": b − a, "points": n, "holdout"}, where r2 = 1 − SS_res/SS_tot
    is None when the scores are all equal (SS_tot = 0). `holdout` tests the law's use in the paper,
    predicting late scores from early ones: it fits on the first m = max(2, ceil(holdout_fraction·n))
    points (`holdout_fraction` is the share used for fitting) and predicts the other n − m, giving
    {"fit_points": m, "predicted_points": n − m, "mean_abs_error", "max_abs_error"}; it is None when
    n < 3, when m ≥ n, or when the first m points have a constant entropy.

    Returns None for fewer than 2 points, or when every exp(H) is the same (to relative 1e-12): a
    constant x leaves a and b undetermined, only their combination at that x. Raises ValueError for
    sequences of different lengths, non-finite values or a fraction outside (0, 1].
    """
    if len(entropy) != len(score):
        raise ValueError(f"fit_entropy_law: {len(entropy)} entropies but {len(score)} scores")
    if not 0.0 < holdout_fraction <= 1.0:
        raise ValueError(f"fit_entropy_law: holdout_fraction must be in (0, 1], got {holdout_fraction}")
    h, y = np.asarray(entropy, dtype=np.float64), np.asarray(score, dtype=np.float64)
    if not (np.isfinite(h).all() and np.isfinite(y).all()):
        raise ValueError("fit_entropy_law: entropies and scores must be finite")
    n = len(y)
    if n < 2:
        return None
    x = np.exp(h)
    fit = _least_squares(x, y)
    if fit is None:
        return None
    a, b = fit
    residual = y - (-a * x + b)
    ss_tot = float(((y - y.mean()) ** 2).sum())  # not exactly 0 for equal scores: test them, not it
    r2 = None if np.ptp(y) == 0.0 else 1.0 - float(residual @ residual) / ss_tot
    holdout = None
    m = max(2, math.ceil(holdout_fraction * n))
    if n >= 3 and m < n and (early := _least_squares(x[:m], y[:m])) is not None:
        errors = np.abs(y[m:] - (-early[0] * x[m:] + early[1]))
        holdout = {
            "fit_points": m,
            "predicted_points": n - m,
            "mean_abs_error": float(errors.mean()),
            "max_abs_error": float(errors.max()),
        }
    return {"a": a, "b": b, "r2": r2, "ceiling": b - a, "points": n, "holdout": holdout}


def _score(m: Mapping) -> float | None:
    """A domain's eval score: its accuracy when it has one, else its mean reward (None if neither)."""
    value = m.get("accuracy") if m.get("accuracy") is not None else m.get("reward_mean")
    return None if value is None else float(value)


def law_points(records: Sequence[Mapping], domain: str) -> list[tuple[int, float, float]]:
    """(s, H, R) points of `domain` for the law, one per eval record at a step s > 0, in step order.

    H is the mean of the domain's `entropy_mean` over the train records with step in (s_prev, s],
    s_prev the step of the previous eval record (−∞ before the first); R is the eval's `accuracy`,
    or its `reward_mean` when accuracy is None. An eval whose window holds no train entropy for the
    domain (e.g. a second eval at the same step), or that does not score the domain, is skipped.
    A train step logged twice (a resumed run) counts once, with its last record.
    """
    entropy_at: dict[int, float] = {}
    for r in records:
        m = r.get("domains", {}).get(domain, {}) if r.get("kind") == "train" else {}
        if m.get("entropy_mean") is not None:
            entropy_at[int(r["step"])] = float(m["entropy_mean"])
    evals = sorted((r for r in records if r.get("kind") == "eval"), key=lambda r: r["step"])
    points, prev = [], -math.inf
    for r in evals:
        s = int(r["step"])
        window = [e for t, e in entropy_at.items() if prev < t <= s]
        prev = s
        score = _score(r.get("domains", {}).get(domain, {}))
        if s > 0 and window and score is not None:
            points.append((s, sum(window) / len(window), score))
    return points


def fit_domains(records: Sequence[Mapping], holdout_fraction: float = 0.2) -> dict[str, dict]:
    """{domain: fit_entropy_law(its law_points)} for every domain scored by an eval record that has
    at least 2 points; a domain whose fit is None (constant entropy) is left out."""
    domains = sorted({d for r in records if r.get("kind") == "eval" for d in r.get("domains", {})})
    out = {}
    for d in domains:
        points = law_points(records, d)
        if len(points) >= 2:
            fit = fit_entropy_law([h for _, h, _ in points], [r for _, _, r in points], holdout_fraction)
            if fit is not None:
                out[d] = fit
    return out


# -- transfer across stages: the R matrix, BWT and FWT ------------------------------------------------


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _diff(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


def transfer(boundary_evals: Sequence[Mapping], stages: Sequence[Mapping]) -> dict | None:
    """The R matrix of a staged run and each domain's BWT and FWT (GEM, arXiv 1706.08840).

    `boundary_evals`: the eval scores in run order, [{"label": "initial", "scores": {domain: float}},
    {"label": stage 1's name, "scores": ...}, ...]: row j is the evaluation after stage j, row 0
    before any training. `stages`: [{"name": str, "domains": [the domains it trains]}] in run order;
    stages past the last row (not yet run) are ignored, so T = len(boundary_evals) − 1. Row j's
    label must be stage j's name.

    A domain trained in several stages: BWT uses stage(i) = the LAST stage training it, FWT uses
    first(i) = the FIRST. BWT_i = R[T][i] − R[stage(i)][i] for domains with stage(i) < T; FWT_i =
    R[first(i) − 1][i] − R[0][i] for domains with first(i) ≥ 2; both None for the other domains
    (never trained, trained in the last stage, or first trained in stage 1) and where a score they
    need is missing. `bwt_mean`/`fwt_mean` average the defined values (None when there are none);
    on a sequential run with one new domain per stage they equal the paper's BWT and FWT.

    Returns {"stages": row labels, "domains": trained domains in order of first training, then the
    others in order of appearance, "R": rows of scores (None where missing), "bwt": {d: float | None},
    "fwt": {...}, "bwt_mean", "fwt_mean"}, or None for fewer than two rows.
    """
    if len(boundary_evals) < 2:
        return None
    t = len(boundary_evals) - 1
    if len(stages) < t:
        raise ValueError(f"transfer: {t} evals after a stage but only {len(stages)} stages")
    stages = list(stages)[:t]
    for j, (row, stage) in enumerate(zip(boundary_evals[1:], stages, strict=True), start=1):
        if row.get("label") != stage["name"]:
            raise ValueError(f"transfer: row {j} is labelled {row.get('label')!r} but stage {j} is {stage['name']!r}")
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for j, stage in enumerate(stages, start=1):
        for d in stage["domains"]:
            first.setdefault(d, j)
            last[d] = j
    domains = list(first)
    for row in boundary_evals:
        domains += [d for d in row["scores"] if d not in domains]
    r = [[row["scores"].get(d) for d in domains] for row in boundary_evals]
    col = {d: i for i, d in enumerate(domains)}
    bwt = {d: _diff(r[t][col[d]], r[last[d]][col[d]]) if last.get(d, t) < t else None for d in domains}
    fwt = {d: _diff(r[first[d] - 1][col[d]], r[0][col[d]]) if first.get(d, 1) >= 2 else None for d in domains}
    return {
        "stages": [row.get("label") for row in boundary_evals],
        "domains": domains,
        "R": r,
        "bwt": bwt,
        "fwt": fwt,
        "bwt_mean": _mean(bwt.values()),
        "fwt_mean": _mean(fwt.values()),
    }


def transfer_from_run(records: Sequence[Mapping], events: Sequence[Mapping]) -> dict | None:
    """`transfer` of a run from its metrics records and its events.

    Row 0 is the first eval record at step 0; the other rows are the evaluations named by the
    run's `stage_boundary` events (`{"event": "stage_boundary", "step", "after_stage",
    "stage_domains": [the domains the stage trained], "eval_step"}`, written by the loop when a
    stage ends and at the end of a staged run), in event order, which also give the stages. Two
    boundaries at the same step (the model did not change between them) count once, with the
    first: the stage that trained up to that step. Scores: accuracy, else reward_mean. None when
    there is no boundary or no initial eval.
    """
    evals = {r["step"]: r for r in records if r.get("kind") == "eval"}  # a step evaluated twice: the last
    initial = evals.get(0)
    boundaries: list[Mapping] = []
    for e in events:
        if e.get("event") != "stage_boundary" or e.get("eval_step") not in evals:
            continue
        if not (boundaries and boundaries[-1]["eval_step"] == e["eval_step"]):
            boundaries.append(e)
    if initial is None or not boundaries:
        return None

    def scores(rec: Mapping) -> dict[str, float | None]:
        return {d: _score(m) for d, m in rec.get("domains", {}).items()}

    rows = [{"label": "initial", "scores": scores(initial)}]
    rows += [{"label": e["after_stage"], "scores": scores(evals[e["eval_step"]])} for e in boundaries]
    stages = [{"name": e["after_stage"], "domains": list(e["stage_domains"])} for e in boundaries]
    return transfer(rows, stages)

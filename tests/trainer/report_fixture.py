"""SYNTHETIC TEST DATA: a builder of a run folder shaped like the training loop's, for the report's
tests. Nothing in it was measured; every number comes from a seeded RNG and simple made-up curves
(entropy decaying per domain, scores following R = −a·exp(H) + b plus noise, diversity falling
with entropy), so the figures have something realistic to draw.

The run: 120 steps, domains math / code / creative; schedule version 1 (stage "structured", math
and code only) for steps 1–60, version 2 (stage "open-ended", all three) from step 61; evaluations
at 0, 40, 60 (a stage-boundary eval), 80 and 120, with pass@k for math and code; effective_rank
every 10 steps (absent or None at other steps); some measures missing at random; summary.json
with an entropy_law (and holdout) and a transfer matrix (one cell None).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

DOMAINS = ["math", "code", "creative"]
STEPS = 120
EVAL_STEPS = [0, 40, 60, 80, 120]
BOUNDARY_STEP = 60
CHANGE_STEP = 61
"""The first step under schedule version 2 (stage "open-ended")."""
STAGES = ["structured", "open-ended"]
LAW = {"math": (0.35, 1.2), "code": (0.3, 1.0)}
"""The made-up (a, b) the synthetic scores follow; creative's reward just creeps up."""
START_ENTROPY = {"math": 1.2, "code": 0.9, "creative": 1.6}
PASS_KS = [1, 2, 4, 8]


def _entropy(domain: str, step: int) -> float:
    start = 0 if domain != "creative" else BOUNDARY_STEP
    return 0.15 + (START_ENTROPY[domain] - 0.15) * math.exp(-max(0, step - start) / 45)


def _score(domain: str, entropy: float, step: int) -> float:
    if domain == "creative":
        return 0.6 + 0.12 * (1 - math.exp(-max(0, step - BOUNDARY_STEP) / 30))
    a, b = LAW[domain]
    return b - a * math.exp(entropy)


def _diversity(rng: random.Random, domain: str, entropy: float) -> dict:
    div = entropy / START_ENTROPY[domain]

    def noisy(v: float, lo: float = 0.0, hi: float = 1.0) -> float:
        return min(hi, max(lo, v + rng.gauss(0, 0.015)))

    m: dict = {}
    for n in range(1, 5):
        m[f"distinct_{n}"] = noisy((0.22 + 0.17 * n) * (0.35 + 0.65 * div))
        m[f"ead_{n}"] = noisy(0.9 * m[f"distinct_{n}"])
    m["self_bleu"] = noisy(0.15 + 0.65 * (1 - div))
    m["self_chrf"] = noisy(0.2 + 0.6 * (1 - div))
    m["semantic_diversity"] = noisy(0.05 + 0.35 * div)
    m["vendi"] = noisy(1 + 5.5 * div, 1.0, 8.0)
    m["unique_trajectories"] = max(1, min(8, round(1 + 7 * div + rng.gauss(0, 0.4))))
    if domain == "code":
        m["functional_classes"] = max(1, round(1 + 4 * div + rng.gauss(0, 0.3)))
        m["ast_shapes"] = max(1, round(1 + 5 * div + rng.gauss(0, 0.3)))
    for key in list(m):
        value = m[key]
        m[f"effective_{key}"] = round(0.85 * value) if isinstance(value, int) else 0.85 * value
    for key in rng.sample(sorted(m), 2):  # a few measures missing from each record
        if rng.random() < 0.5:
            m[key] = None
        else:
            del m[key]
    return m


def _train_record(rng: random.Random, step: int) -> dict:
    version, stage = (1, STAGES[0]) if step < CHANGE_STEP else (2, STAGES[1])
    domains = {}
    for d in DOMAINS if version == 2 else DOMAINS[:2]:
        h = max(0.02, _entropy(d, step) + rng.gauss(0, 0.03))
        score = min(1.0, max(0.0, _score(d, h, step) + rng.gauss(0, 0.05)))
        m = {"samples": 48, "reward_mean": score, "accuracy": None if d == "creative" else score, "entropy_mean": h}
        m.update(_diversity(rng, d, h))
        if step % 10 == 0:
            m["effective_rank"] = 20 + 25 * h / START_ENTROPY[d] + rng.gauss(0, 0.5)
        elif step % 2:
            m["effective_rank"] = None
        domains[d] = m
    return {
        "kind": "train",
        "update": "rl",
        "step": step,
        "schedule": {"version": version, "stage": stage, "kind": "rl", "prompts": {d: 8 for d in domains}},
        "domains": domains,
        "seconds": {"generate": 0.4, "score": 0.2, "learn": 0.3, "step": 0.9 + rng.random() * 0.1},
    }


def _eval_record(rng: random.Random, step: int) -> dict:
    domains = {}
    for d in DOMAINS:
        h = _entropy(d, step)
        score = min(1.0, max(0.0, _score(d, h, step) + rng.gauss(0, 0.02)))
        m = {"samples": 64, "reward_mean": score, "accuracy": None if d == "creative" else score}
        m.update(_diversity(rng, d, h))
        if d != "creative":  # sharper late: pass@1 rises, the gain from more samples shrinks
            spread = 0.9 - 0.5 * step / STEPS
            for k in PASS_KS:
                m[f"pass@{k}"] = 1 - (1 - score) ** (k**spread)
        domains[d] = m
    record = {"kind": "eval", "step": step, "policy_version": step, "domains": domains}
    if step == BOUNDARY_STEP:
        record["boundary"] = {"after_stage": STAGES[0], "stage_domains": DOMAINS[:2]}
    return record


def expected_law_points(records: list[dict], domain: str) -> list[tuple[int, float, float]]:
    """(step, mean entropy, score) per eval after step 0, written apart from the report's code."""
    evals = [r for r in records if r["kind"] == "eval"]
    out = []
    for prev, e in zip(evals, evals[1:]):
        hs = [
            r["domains"][domain]["entropy_mean"]
            for r in records
            if r["kind"] == "train" and prev["step"] < r["step"] <= e["step"] and domain in r["domains"]
        ]
        m = e["domains"][domain]
        score = m["accuracy"] if m["accuracy"] is not None else m["reward_mean"]
        if hs:
            out.append((e["step"], sum(hs) / len(hs), score))
    return out


def _fit(points: list[tuple[int, float, float]]) -> tuple[float, float]:
    xs, ys = [math.exp(h) for _, h, _ in points], [s for _, _, s in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return -slope, my - slope * mx


def _summary(run_id: str, records: list[dict]) -> dict:
    law = {}
    for d in DOMAINS:
        pts = expected_law_points(records, d)
        a, b = _fit(pts)
        ys = [s for _, _, s in pts]
        res = sum((s - (b - a * math.exp(h))) ** 2 for _, h, s in pts)
        tot = sum((y - sum(ys) / len(ys)) ** 2 for y in ys)
        holdout = None
        if len(pts) >= 3:
            ha, hb = _fit(pts[:2])
            errors = [abs(s - (hb - ha * math.exp(h))) for _, h, s in pts[2:]]
            holdout = {
                "fit_points": 2,
                "predicted_points": len(errors),
                "mean_abs_error": sum(errors) / len(errors),
                "max_abs_error": max(errors),
            }
        law[d] = {"a": a, "b": b, "r2": 1 - res / tot, "ceiling": b - a, "points": len(pts), "holdout": holdout}
    evals = {r["step"]: r for r in records if r["kind"] == "eval"}

    def score(step: int, d: str) -> float:
        m = evals[step]["domains"][d]
        return m["accuracy"] if m["accuracy"] is not None else m["reward_mean"]

    grid = [[score(s, d) for d in DOMAINS] for s in (0, BOUNDARY_STEP, STEPS)]
    grid[1][2] = None  # a cell not measured, as the report must show it
    bwt = {"math": grid[2][0] - grid[1][0], "code": grid[2][1] - grid[1][1], "creative": None}
    fwt = {"math": None, "code": None, "creative": None}
    transfer = {
        "stages": ["initial", *STAGES],
        "domains": DOMAINS,
        "R": grid,
        "bwt": bwt,
        "fwt": fwt,
        "bwt_mean": (bwt["math"] + bwt["code"]) / 2,
        "fwt_mean": None,
    }
    return {"run_id": run_id, "synthetic": True, "entropy_law": law, "transfer": transfer}


def build_synthetic_run(root: Path, run_id: str = "synthetic-run-a", seed: int = 0, summary: bool = True) -> Path:
    """Write the synthetic run folder `root/run_id` and return it."""
    rng = random.Random(seed)
    path = root / run_id
    path.mkdir(parents=True)
    records = []
    for step in range(STEPS + 1):
        if step:
            records.append(_train_record(rng, step))
        if step in EVAL_STEPS:
            records.append(_eval_record(rng, step))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = {
        "run": {"name": "synthetic-report-test", "steps": STEPS, "eval_every_steps": 40, "seed": seed},
        "generation": {"samples_per_prompt": 8},
        "domains": {d: {"kind": d} for d in DOMAINS},
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    events = [{"time": 0.0, "event": "start", "run_id": run_id, "resume": False}]
    events += [{"time": float(s), "event": "eval", "step": s} for s in EVAL_STEPS]
    events.append({"time": 200.0, "event": "end", "seconds": 200.0})
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    if summary:
        (path / "summary.json").write_text(json.dumps(_summary(run_id, records), indent=2))
    return path

"""Verdicts on a study's claims: held, did not hold, or inconclusive, with the numbers behind each.

A test is judged on the 95% t-interval over seeds of its quantity (study/results.py):
- held: the whole interval is on the side the claim predicts (past the margin or value);
- did not hold: the whole interval is on the other side;
- inconclusive: the interval straddles it, fewer than two seeds have the quantity, or a run is
  missing.
A group `all` holds when every test holds and fails when one fails; `any` holds when one holds
and fails when every one fails; otherwise it is inconclusive. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from counterpoint.study.results import Interval, RunResult, interval, paired, values
from counterpoint.study.spec import Claim, ClaimTest

HELD, FAILED, INCONCLUSIVE = "held", "did not hold", "inconclusive"


@dataclass
class Verdict:
    outcome: str
    evidence: str
    """The numbers behind the outcome, in words."""
    parts: list[Verdict] = field(default_factory=list)


def _side(iv: Interval | None, threshold: float, above: bool) -> str:
    """HELD if the interval lies beyond `threshold` on the expected side, FAILED if wholly on the
    other side, else INCONCLUSIVE (also with one seed: a single value has no interval)."""
    if iv is None or iv.half is None:
        return INCONCLUSIVE
    lo, hi = iv.low, iv.high
    if above:
        return HELD if lo > threshold else FAILED if hi < threshold else INCONCLUSIVE
    return HELD if hi < threshold else FAILED if lo > threshold else INCONCLUSIVE


def _seeds(d: dict[int, float], signed: bool = True) -> str:
    return ", ".join(f"{v:{'+' if signed else ''}.3f}" for _, v in sorted(d.items()))


def _name(test: ClaimTest) -> str:
    """What a test is about, in a few words: its condition and metric (a group's first test's)."""
    return f"{test.condition} {test.metric}" if test.condition else _name(test.tests[0])


def judge(test: ClaimTest, runs: dict[str, list[RunResult]]) -> Verdict:
    if test.test in ("all", "any"):
        parts = [judge(t, runs) for t in test.tests]
        outcomes = [p.outcome for p in parts]
        if test.test == "all":
            outcome = FAILED if FAILED in outcomes else HELD if all(o == HELD for o in outcomes) else INCONCLUSIVE
        else:
            outcome = HELD if HELD in outcomes else FAILED if all(o == FAILED for o in outcomes) else INCONCLUSIVE
        word = "every one of" if test.test == "all" else "one of"
        named = "; ".join(f"{_name(t)} {o}" for t, o in zip(test.tests, outcomes))
        return Verdict(outcome, f"{word} {len(parts)}: {named}", parts)
    cond = runs.get(test.condition, [])
    if not cond:
        return Verdict(INCONCLUSIVE, f"{test.condition}: no finished run")
    if test.test == "change":
        per_seed = values(cond, test.metric, "change")
        iv = interval(list(per_seed.values()))
        outcome = _side(iv, test.margin, above=test.expect == "up")
        beyond = f" (expected {'>' if test.expect == 'up' else '<'} {test.margin:+g})" if test.margin else ""
        what = f"{test.metric} end − start in {test.condition}{beyond}"
    elif test.test == "difference":
        other = runs.get(test.than, [])
        if not other:
            return Verdict(INCONCLUSIVE, f"{test.than}: no finished run")
        per_seed = paired(cond, other, test.metric)
        iv = interval(list(per_seed.values()))
        outcome = _side(iv, test.margin, above=test.expect == "greater")
        rel = ">" if test.expect == "greater" else "<"
        what = f"{test.metric}: {test.condition} − {test.than} (paired by seed; expected {rel} {test.margin:+g})"
    else:
        per_seed = values(cond, test.metric, "end")
        iv = interval(list(per_seed.values()))
        outcome = _side(iv, test.value, above=test.test == "at_least")
        rel = "≥" if test.test == "at_least" else "≤"
        what = f"{test.metric} at the end of {test.condition} (expected {rel} {test.value:g})"
    if iv is None:
        return Verdict(INCONCLUSIVE, f"{what}: not measured")
    note = " (one seed: no interval)" if iv.half is None else ""
    per = _seeds(per_seed, signed=test.test in ("change", "difference"))
    return Verdict(outcome, f"{what}: {iv.text()}{note}; per seed {per}")


def judge_claims(claims: list[Claim], runs: dict[str, list[RunResult]]) -> list[tuple[Claim, Verdict]]:
    return [(c, judge(c.test, runs)) for c in claims]

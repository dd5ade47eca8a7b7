"""The registry of task suites: for each domain, the suites that can serve it, by name.

A suite is a `TaskDomain` whose `name` is its domain (so rewards, advantages and metrics stay
grouped by domain) and whose `suite` says where its problems come from. "synthetic" is each
domain's default, sized for the built-in tiny model; the others read data shipped in packages
(see docs/rewards.md for the install line of each) and suit larger models. Imports are lazy: a
suite's data package is needed only when that suite is built.
"""

from __future__ import annotations

from typing import Any, Callable

from counterpoint.rollout.tasks.base import TaskDomain


def _math(cls_name: str) -> Callable[..., TaskDomain]:
    def build(**kwargs: Any) -> TaskDomain:
        from counterpoint.rollout.tasks import math

        return getattr(math, cls_name)(**kwargs)

    return build


def _code_synthetic(**kwargs: Any) -> TaskDomain:
    from counterpoint.rollout.tasks.code import CodeDomain

    return CodeDomain(**kwargs)


def _code_humaneval(**kwargs: Any) -> TaskDomain:
    from counterpoint.rollout.tasks.humaneval import HumanEvalDomain

    return HumanEvalDomain(**kwargs)


def _creative_synthetic(**kwargs: Any) -> TaskDomain:
    from counterpoint.rollout.tasks.creative import CreativeDomain

    return CreativeDomain(**kwargs)


def _creative_writingbench(**kwargs: Any) -> TaskDomain:
    from counterpoint.rollout.tasks.writingbench import WritingBenchDomain

    return WritingBenchDomain(**kwargs)


SUITES: dict[str, dict[str, Callable[..., TaskDomain]]] = {
    "math": {"synthetic": _math("MathDomain"), "gsm": _math("GsmDomain"), "champ": _math("ChampDomain")},
    "code": {"synthetic": _code_synthetic, "humaneval": _code_humaneval},
    "creative": {"synthetic": _creative_synthetic, "writingbench": _creative_writingbench},
}
"""domain → suite → constructor. Keyword arguments: math suites `limits` (MathCheckLimits); code
suites `limits` (SandboxLimits) and `workers`; creative suites `scorer` (CreativeScorer)."""


def build_suite(domain: str, suite: str = "synthetic", **kwargs: Any) -> TaskDomain:
    """The TaskDomain for a domain's suite; an unknown name fails with the known ones."""
    if domain not in SUITES:
        raise KeyError(f"unknown domain {domain!r}; known: {sorted(SUITES)}")
    if suite not in SUITES[domain]:
        raise KeyError(f"unknown {domain} suite {suite!r}; known: {sorted(SUITES[domain])}")
    return SUITES[domain][suite](**kwargs)

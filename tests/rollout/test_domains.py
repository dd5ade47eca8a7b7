"""The domain registry: a domain is a name and a config slice; a second domain of a kind needs
only config, and its prompts, seeds and held-out split go by its own name."""

from __future__ import annotations

import random
from typing import get_args

import pytest

from counterpoint.config import load_config
from counterpoint.rollout.config import DOMAIN_CONFIGS, CreativeDomainConfig, MathDomainConfig
from counterpoint.rollout.domains import KINDS, build_domain, domain_config, kinds_of, sandbox_limits, task_source
from counterpoint.rollout.rewards.reward_worker import RewardWorker
from counterpoint.rollout.tasks.base import is_eval_text

TWO_MATH = [
    "domains={math: {weight: 2.0}, algebra: {kind: math, reward: {timeout_seconds: 3}, eval: {prompts: 8}}}",
]


def test_every_kind_has_its_config_and_the_same_suites():
    assert set(KINDS) == set(DOMAIN_CONFIGS)
    for name, kind in KINDS.items():
        assert kind.config is DOMAIN_CONFIGS[name]
        if name == "python":  # the user's rows only: no suites
            assert not kind.suites and "suite" not in kind.config.model_fields
            continue
        suites = get_args(kind.config.model_fields["suite"].annotation)
        assert list(kind.suites) == list(suites) and suites[0] == "synthetic"
    assert [k for k, kind in KINDS.items() if kind.needs_sandbox] == ["code"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_suite_builds_and_knows_its_name_kind_and_suite(kind):
    for suite in KINDS[kind].suites:
        domain = build_domain(f"my_{kind}", {"kind": kind, "suite": suite})
        assert (domain.name, domain.kind, domain.suite) == (f"my_{kind}", kind, suite)


def test_two_math_domains_need_only_config():
    cfg = load_config(overrides=TWO_MATH)
    assert {n: d.kind for n, d in cfg.domains.items()} == {"math": "math", "algebra": "math"}
    assert cfg.domains["algebra"].reward.timeout_seconds == 3.0
    assert kinds_of(cfg.domains) == ["math"]
    assert set(cfg.prompts_per_domain()) == {"math", "algebra"}
    sources = {n: task_source(n, d, seed=0) for n, d in cfg.domains.items()}
    workers = {n: RewardWorker(n, d) for n, d in cfg.domains.items()}
    assert len(sources["algebra"].eval_prompts()) == 8
    for name, source in sources.items():
        assert source.domain.name == name and source.domain.kind == "math"
        assert workers[name].domain.name == name and workers[name].kind == "math"
        batch = source.next_batch(5)
        assert all(p.domain == name and p.prompt_id.startswith(f"{name}/train/") for p, _ in batch)
        assert all(p.domain == name and is_eval_text(name, p.text) for p in source.eval_prompts())
        [(prompt, demo)] = batch[:1]
        scores, *_ = workers[name].score([(prompt, [demo, " banana"])])
        assert [s.correct for s in scores[0]] == [True, False]
    # Seeds and the held-out split are keyed by the name: the two draw different problems.
    assert [p.text for p, _ in sources["math"].next_batch(20)] != [p.text for p, _ in sources["algebra"].next_batch(20)]


def test_a_code_domain_of_any_name_checks_the_sandbox_with_its_own_limits(monkeypatch):
    from counterpoint.rollout.rewards.sandbox import bwrap

    checked = []
    monkeypatch.setattr(bwrap, "check_sandbox", checked.append)
    cfg = load_config(overrides=["domains={python: {kind: code, reward: {sandbox: {seccomp: false, cpu_seconds: 1}}}}"])
    worker = RewardWorker("python", cfg.domains["python"])
    assert checked == [cfg.domains["python"].reward.sandbox] and checked[0].seccomp is False
    assert sandbox_limits(cfg.domains["python"]).cpu_seconds == 1
    assert worker.domain.name == "python" and worker.domain.reward.sandbox.cpu_seconds == 1
    prompt, _ = worker.domain.make(random.Random(0), "python/train/0")
    assert prompt.domain == "python"
    assert sandbox_limits(MathDomainConfig()) is None


def test_a_creative_domain_draws_prompts_without_starting_its_judge():
    slice_ = CreativeDomainConfig(reward={"judge_weight": 1.0, "judge": {"model_path": "/nonexistent"}})
    domain = build_domain("poems", slice_)
    prompt, _ = domain.make(random.Random(0), "poems/train/0")
    assert prompt.domain == "poems" and domain.kind == "creative"
    assert domain._scorer is None  # the judge's engine starts only on scoring or warm_up


def test_domain_config_defaults_and_errors():
    assert domain_config("code") == DOMAIN_CONFIGS["code"]()
    assert domain_config("algebra", {"kind": "math", "suite": "gsm"}).suite == "gsm"
    with pytest.raises(ValueError, match=r"'poetry': its kind is required \(one of math, code, creative, python\)"):
        build_domain("poetry")
    with pytest.raises(ValueError, match="unknown kind 'verse'"):
        RewardWorker("poetry", {"kind": "verse"})

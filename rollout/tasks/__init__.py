"""Task domains: seeded generators with held-out eval splits and their rewards, by suite."""

from __future__ import annotations

from counterpoint.rollout.tasks.base import TaskDomain, TaskSource
from counterpoint.rollout.tasks.suites import SUITES, build_suite


def build_domain(name: str, *, sandbox=None, suite: str = "synthetic", rewards=None) -> TaskDomain:
    """The domain object for a config name: `sandbox` is the `CodeSandboxConfig`, `rewards` the
    `RewardsConfig` (None: the defaults)."""
    kwargs = {}
    if name == "code" and sandbox is not None:
        from counterpoint.rollout.sandbox import SandboxLimits

        kwargs["limits"] = SandboxLimits(cpu_seconds=sandbox.cpu_seconds, memory_bytes=sandbox.memory_mib * 2**20,
                                         wall_seconds=sandbox.wall_seconds, seccomp=sandbox.seccomp)
    if name == "math" and rewards is not None:
        from counterpoint.rollout.math_check import MathCheckLimits

        kwargs["limits"] = MathCheckLimits(timeout_seconds=rewards.math.timeout_seconds,
                                           max_response_chars=rewards.math.max_response_chars)
    if name == "creative" and rewards is not None:
        kwargs["scorer"] = creative_scorer(rewards.creative)
    return build_suite(name, suite, **kwargs)


def creative_scorer(cfg):
    from counterpoint.rollout.tasks.creative import CreativeScorer, CreativeWeights

    judge = None
    if cfg.judge is not None and cfg.judge_weight > 0:
        from counterpoint.rollout.engine import RolloutEngine
        from counterpoint.rollout.judge import Judge, engine_generate

        engine = RolloutEngine(cfg.judge.model_path, max_model_len=2048, kv_cache_mib=cfg.judge.kv_cache_mib,
                               max_num_seqs=32, seed=0, cache_dir="~/.cache/counterpoint")
        judge = Judge(engine_generate(engine, cfg.judge.max_tokens))
    return CreativeScorer(weights=CreativeWeights(novelty=cfg.novelty_weight, judge=cfg.judge_weight if judge else 0.0),
                          novelty_kind=cfg.novelty_kind, novelty_reduce=cfg.novelty_reduce,
                          memory_size=cfg.memory_size, judge=judge)


__all__ = ["SUITES", "TaskDomain", "TaskSource", "build_domain", "build_suite"]

"""Evaluations: every domain's held-out split, its figures (accuracy, pass@k, diversity), the
entropy–performance law refitted at each one, and the evaluations at curriculum stage boundaries
that make the run's transfer matrix (BWT, FWT)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from counterpoint.rollout.diversity import mean_over_groups
from counterpoint.rollout.records import Prompt
from counterpoint.trainer.analysis import fit_domains, transfer_from_run
from counterpoint.trainer.metrics import PhaseTimer, pass_at_k_metrics, sample_metrics
from counterpoint.trainer.run_folder import RunFolder
from counterpoint.trainer.sampling import engine_options, fits, group_by_sampling, prompt_limit

if TYPE_CHECKING:
    from counterpoint.config import CounterpointConfig
    from counterpoint.trainer.loop import LoopState, RunParts

log = logging.getLogger(__name__)


def last_stage(run: RunFolder) -> tuple[str | None, list[str]] | None:
    """The stage (name, domains trained) of the run folder's last train record, if any."""
    trained = [r for r in run.read_metrics() if r["kind"] == "train"]
    if not trained:
        return None
    plan = trained[-1]["schedule"]
    return plan.get("stage"), [d for d, n in plan.get("prompts", {}).items() if n > 0]


def stage_boundary(
    cfg: CounterpointConfig, parts: RunParts, run: RunFolder, state: LoopState, stage: tuple, last_eval: dict
) -> dict:
    """A stage ended after `state.step`: its evaluation (the one at this step, or a new one) is a
    row of the run's transfer matrix (BWT, FWT; trainer/analysis.py). Recorded as a
    `stage_boundary` event naming the stage, the domains it trained and the eval's step."""
    if last_eval["step"] != state.step:
        last_eval = evaluate(cfg, parts, run, state)
    run.event("stage_boundary", step=state.step, after_stage=stage[0], stage_domains=stage[1], eval_step=state.step)
    return last_eval


def evaluate(cfg: CounterpointConfig, parts: RunParts, run: RunFolder, state: LoopState) -> dict:
    """Every domain's held-out split, decoded as its eval spec says (greedy by default; open-ended
    domains sample a group, since novelty needs one); logs and returns per-domain figures."""
    record = eval_record(cfg, parts, list(parts.sources), state)
    # the entropy–performance law per domain, refitted on every evaluation so far (trainer/analysis.py)
    record["entropy_law"] = fit_domains(run.read_metrics() + [record], cfg.metrics.law_holdout_fraction)
    run.log_metrics(record)
    run.event("eval", step=state.step, domains={d: _headline(m) for d, m in record["domains"].items()})
    log.info("eval @ step %d: %s", state.step, "  ".join(f"{d} {_headline(m)}" for d, m in record["domains"].items()))
    return record


def eval_record(
    cfg: CounterpointConfig,
    parts: RunParts,
    domains: list[str],
    state: LoopState,
    prompts_of: Callable[[str], list[Prompt]] | None = None,
) -> dict:
    """The held-out figures of `domains` now, as a metrics record (not logged). `prompts_of(d)`:
    other prompts to score instead of the held-out split (the transfer probes' own split)."""
    timer = PhaseTimer()
    by_sampling: dict[tuple, list[Prompt]] = {}
    skipped = {}
    for domain in domains:
        spec = cfg.domains[domain].eval
        limit = prompt_limit(cfg, domain, parts.max_model_len)
        candidates = parts.sources[domain].eval_prompts() if prompts_of is None else prompts_of(domain)
        prompts = [p for p in candidates if fits(parts.prompt_tokens, limit, p)]
        skipped[domain] = len(candidates) - len(prompts)
        for key, group in group_by_sampling(cfg, prompts).items():
            by_sampling.setdefault((spec.samples_per_prompt, spec.temperature, key), []).extend(group)
    samples = []
    with timer("generate"):
        for (n, temperature, key), prompts in by_sampling.items():
            samples += parts.rollout.generate(
                prompts, samples_per_prompt=n, temperature=temperature, **engine_options(key)
            )
    with timer("score"):
        scoring = parts.rewards.score(samples, cfg.metrics.diversity.options(evaluation=True))
    metrics = sample_metrics(scoring.scored)
    for d, m in metrics.items():
        m["prompts_skipped_too_long"] = skipped.get(d, 0)
        m.update(mean_over_groups(scoring.diversity.get(d, [])))
        m.update(pass_at_k_metrics([r for r in scoring.scored if r.domain == d]))
        m["diversity_seconds"] = round(scoring.diversity_seconds.get(d, {}).get("total", 0.0), 4)
    return {
        "kind": "eval",
        "step": state.step,
        "policy_version": state.policy_version,
        "domains": metrics,
        "seconds": timer.seconds,
    }


def _headline(m: dict) -> str:
    if m.get("accuracy") is not None:
        return f"acc {m['accuracy']:.3f}"
    return f"reward {m['reward_mean']:.3f}"


def run_summary(run: RunFolder, result: dict, seconds: float) -> dict:
    """The run's end figures: first and last evaluation per domain, the entropy–performance law
    fitted on all its evaluations, and (a staged run) the transfer matrix with BWT and FWT
    (`summary.json`); `result` is what `trainer.loop.train` returned."""
    first, last = result["first_eval"]["domains"], result["last_eval"]["domains"]
    records = run.read_metrics()
    evals = [r for r in records if r["kind"] == "eval"]
    return {
        "run_id": run.run_id,
        "run_dir": str(run.path),
        "seconds": round(seconds, 1),
        "policy_version": result["policy_version"],
        "eval": {
            d: {
                "start": {k: first[d].get(k) for k in ("accuracy", "reward_mean")},
                "end": {k: last[d].get(k) for k in ("accuracy", "reward_mean")},
            }
            for d in last
        },
        "entropy_law": evals[-1].get("entropy_law", {}) if evals else {},
        "transfer": transfer_from_run(records, run.read_events()),
    }

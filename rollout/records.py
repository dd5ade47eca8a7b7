"""The small typed records that cross actor boundaries.

A `Prompt` comes from a task source, a `Sample` from a rollout engine, a `Score` from a reward
function. They are plain dataclasses of builtins so Ray can pickle them cheaply and a unit test
can build them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prompt:
    """One task instance: what the model sees and what is needed to check its answer."""

    domain: str
    """The domain's name in the config, e.g. "math" or "algebra" (not its kind); rewards, advantages,
    metrics and the schedule are grouped by it."""
    prompt_id: str
    """Stable id, e.g. "math/train/17"; unique within a run."""
    text: str
    """The text fed to the model."""
    reference: dict[str, Any] = field(default_factory=dict)
    """Whatever the domain's reward needs: a gold answer, unit tests, a topic."""


@dataclass
class Sample:
    """One generated response to a prompt, tagged with the policy version that produced it."""

    prompt: Prompt
    prompt_token_ids: list[int]
    response_token_ids: list[int]
    response_logprobs: list[float]
    """Per-token log-probs of the sampled tokens under the engine, same length as the ids."""
    response_text: str
    finish_reason: str
    policy_version: int


@dataclass(frozen=True)
class Score:
    """What a reward function says of one response."""

    reward: float
    correct: bool | None = None
    """Exact success where the domain defines it (math, code); None for open-ended domains."""
    info: dict[str, Any] = field(default_factory=dict)
    """Small diagnostics (a parse failure, per-test results, the quality gate's verdict)."""


@dataclass
class ScoredSample:
    sample: Sample
    score: Score

    @property
    def domain(self) -> str:
        return self.sample.prompt.domain

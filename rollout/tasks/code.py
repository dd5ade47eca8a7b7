"""The synthetic suite of the code kind: one-line Python functions small enough for a ~1M-parameter model.

A prompt is an instruction comment and a function header whose `return` the model completes:

    # return x plus 3
    def f(x):
        return

and the demonstration is the rest of that line, ` x + 3\n`. Problems come from a few families
(arithmetic with random constants, max/min, string and list basics). The reward is the fraction of
four unit tests the completed function passes, run in the bubblewrap sandbox through the test
harness (`code_check`), which keeps the candidate away from the expected values and the verdict.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from counterpoint.rollout.config import CodeReward
from counterpoint.rollout.records import Prompt, Score
from counterpoint.rollout.rewards.code_check import io_tests, run_many
from counterpoint.rollout.rewards.sandbox.bwrap import check_sandbox

TESTS_PER_PROBLEM = 4
ENTRY = "f"
NUMBER_FAMILIES = ("add", "sub", "mul", "affine", "max", "min")
STRING_FAMILIES = ("upper", "lower", "reverse", "strlen", "repeat")
LIST_FAMILIES = ("sum", "listlen", "first")
# Parameter names are drawn too. Without them a family such as "max" has a single prompt text,
# which a held-out eval split of a few dozen problems almost surely contains, and TaskSource then
# keeps the whole family out of training.
INT_NAMES = ("x", "y", "n", "a", "b", "v")
PAIR_NAMES = (("a", "b"), ("x", "y"), ("m", "n"), ("p", "q"), ("u", "v"), ("i", "j"))
STRING_NAMES = ("s", "t", "w", "text", "word", "name")
LIST_NAMES = ("xs", "ys", "nums", "vals", "items", "data")


@dataclass(frozen=True)
class _Problem:
    instruction: str
    params: str
    completion: str
    solve: Callable[..., Any]
    draw_args: Callable[[random.Random], list]


def _int(rng: random.Random) -> list:
    return [rng.randint(-20, 20)]


def _two_ints(rng: random.Random) -> list:
    return [rng.randint(-20, 20), rng.randint(-20, 20)]


def _word(rng: random.Random) -> list:
    # Mixed case, so upper() and lower() both change it.
    return ["".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(1, 6)))]


def _int_list(rng: random.Random) -> list:
    return [[rng.randint(-9, 9) for _ in range(rng.randint(1, 5))]]


def _draw_problem(rng: random.Random) -> _Problem:
    """One problem; the family is drawn first so families are equally likely whatever their constants."""
    family = rng.choice(NUMBER_FAMILIES + STRING_FAMILIES + LIST_FAMILIES)
    x, s, xs = rng.choice(INT_NAMES), rng.choice(STRING_NAMES), rng.choice(LIST_NAMES)
    a, b = rng.choice(PAIR_NAMES)
    if family == "add":
        k = rng.randint(1, 19)
        return _Problem(f"return {x} plus {k}", x, f"{x} + {k}", lambda v: v + k, _int)
    if family == "sub":
        k = rng.randint(1, 19)
        return _Problem(f"return {x} minus {k}", x, f"{x} - {k}", lambda v: v - k, _int)
    if family == "mul":
        k = rng.randint(2, 9)
        return _Problem(f"return {x} times {k}", x, f"{x} * {k}", lambda v: v * k, _int)
    if family == "affine":
        m, k = rng.randint(2, 9), rng.randint(1, 19)
        return _Problem(f"return {x} times {m} plus {k}", x, f"{x} * {m} + {k}", lambda v: v * m + k, _int)
    if family == "repeat":
        k = rng.randint(2, 5)
        return _Problem(f"return {s} repeated {k} times", s, f"{s} * {k}", lambda v: v * k, _word)
    fixed = {
        "max": _Problem(f"return the larger of {a} and {b}", f"{a}, {b}", f"max({a}, {b})", max, _two_ints),
        "min": _Problem(f"return the smaller of {a} and {b}", f"{a}, {b}", f"min({a}, {b})", min, _two_ints),
        "upper": _Problem(f"return {s} in upper case", s, f"{s}.upper()", str.upper, _word),
        "lower": _Problem(f"return {s} in lower case", s, f"{s}.lower()", str.lower, _word),
        "reverse": _Problem(f"return {s} reversed", s, f"{s}[::-1]", lambda v: v[::-1], _word),
        "strlen": _Problem(f"return the length of {s}", s, f"len({s})", len, _word),
        "sum": _Problem(f"return the sum of {xs}", xs, f"sum({xs})", sum, _int_list),
        "listlen": _Problem(f"return the length of {xs}", xs, f"len({xs})", len, _int_list),
        "first": _Problem(f"return the first element of {xs}", xs, f"{xs}[0]", lambda v: v[0], _int_list),
    }
    return fixed[family]


def function_body(response: str) -> str:
    """The part of a response that belongs to the function: its first line (the rest of the
    `return` line) and the indented lines after it, up to a blank or unindented line."""
    first, *rest = response.split("\n")
    kept = [first]
    for line in rest:
        if not line.strip() or line[0] not in " \t":
            break
        kept.append(line)
    return "\n".join(kept) + "\n"


class CodeDomain:
    """Complete a one-line Python function; reward = fraction of its 4 unit tests passed in the sandbox.

    `name` is the domain's name in the config (what its prompts carry); `reward` its reward section.
    """

    kind = "code"
    suite = "synthetic"

    def __init__(self, reward: CodeReward = CodeReward(), *, name: str = "code"):
        self.name = name
        self.reward = reward
        # Checked on first scoring, not here: making prompts and demonstrations needs no sandbox.
        self._sandbox_checked = False

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        problem = _draw_problem(rng)
        header = f"def {ENTRY}({problem.params}):"
        tests = []
        for _ in range(TESTS_PER_PROBLEM):
            args = problem.draw_args(rng)
            tests.append([args, problem.solve(*args)])
        text = f"# {problem.instruction}\n{header}\n    return"
        reference = {"entry": ENTRY, "header": header, "tests": tests}
        return Prompt(self.name, prompt_id, text, reference), f" {problem.completion}\n"

    def candidate(self, prompt: Prompt, response: str) -> str:
        """The source the sandbox runs: the prompt's header completed by the response."""
        return prompt.text + function_body(response)

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        if not self._sandbox_checked:
            check_sandbox(self.reward.sandbox)  # a missing sandbox must fail loudly, not score every response 0
            self._sandbox_checked = True
        tests = io_tests(prompt.reference["tests"])
        # A low-entropy policy repeats itself: run_many runs each distinct program once (the
        # tests are deterministic, so identical programs get identical results).
        jobs = [(self.candidate(prompt, r), prompt.reference["entry"], tests) for r in responses]
        return run_many(jobs, self.reward.sandbox, self.reward.parallel_runs)

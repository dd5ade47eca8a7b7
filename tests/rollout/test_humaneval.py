"""The HumanEval suite, run through our sandbox and harness only, and the harness's value encoding."""

from __future__ import annotations

import math
import random

import pytest

from counterpoint.rollout.config import CodeReward, SandboxConfig
from counterpoint.rollout.rewards.sandbox.harness import count_check_tests, decode, encode
from counterpoint.rollout.tasks.base import TaskSource
from counterpoint.rollout.tasks.humaneval import HumanEvalDomain, function_block, humaneval_problems

DOMAIN = HumanEvalDomain(CodeReward(sandbox=SandboxConfig(cpu_seconds=2, wall_seconds=6.0)))
# 32 and 38 call helpers from the prompt, 33 calls the function by name, 0 and 2 compare floats.
SAMPLE_IDS = ("HumanEval/0", "HumanEval/2", "HumanEval/32", "HumanEval/33", "HumanEval/38", "HumanEval/53")


def _prompt(task_id: str):
    [problem] = [p for p in humaneval_problems() if p["task_id"] == task_id]
    index = humaneval_problems().index(problem)

    class Pick(random.Random):
        def choice(self, seq):
            return seq[index]

    return DOMAIN.make(Pick(), f"code/test/{index}")


def test_the_data_ships_164_problems():
    problems = humaneval_problems()
    assert len(problems) == 164 and all(count_check_tests(p["test"]) >= 1 for p in problems)


@pytest.mark.parametrize("task_id", SAMPLE_IDS)
def test_canonical_solutions_pass_every_test(task_id):
    prompt, demo = _prompt(task_id)
    [score] = DOMAIN.score_group(prompt, [demo])
    assert (score.reward, score.correct) == (1.0, True), score.info
    assert score.info["tests"] == ["pass"] * score.info["total"]


def test_partly_right_code_gets_a_pass_fraction():
    prompt, _ = _prompt("HumanEval/53")  # add(x, y)
    [half, prose, cut] = DOMAIN.score_group(
        prompt, ["    return x + y if x < 5 else 0\n", "I would add them.", "    return x + y\nprint('more')\n"]
    )
    assert 0.0 < half.reward < 1.0 and not half.correct and half.info["error"] == "wrong_answer"
    assert prose.info["error"] == "syntax_error"
    assert cut.correct  # what follows the function is cut, as HumanEval's stop sequences do


def test_function_block_stops_at_the_first_unindented_line():
    assert function_block("    a = 1\n\n    return a\ndef g():\n    pass") == "    a = 1\n\n    return a\n"


def test_suite_is_seeded():
    a = [p.text for p, _ in TaskSource(HumanEvalDomain(), seed=5, eval_size=4).next_batch(5)]
    b = [p.text for p, _ in TaskSource(HumanEvalDomain(), seed=5, eval_size=4).next_batch(5)]
    assert a == b and all(t.lstrip().startswith(("def ", "from ", "import ")) for t in a)


def test_encoding_keeps_builtin_types_and_rejects_others():
    values = [None, True, 3, 2**80, 1.5, math.inf, "s", b"b", [1, (2, 3)], {"k": {1, 2}}, frozenset({1}), 1j]
    for value in values:
        back = decode(encode(value))
        assert back == value and type(back) is type(value)
    assert math.isnan(decode(encode(math.nan)))
    with pytest.raises(TypeError):
        encode(type("Sneaky", (int,), {})(1))  # a subclass could bring its own __eq__
    with pytest.raises(ValueError):
        decode(["x", 1])

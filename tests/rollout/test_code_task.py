"""The code domain: seeded problems, demonstrations that pass, and sandboxed partial-credit scoring."""

from __future__ import annotations

import json
import random

from counterpoint.rollout.config import CodeReward, SandboxConfig
from counterpoint.rollout.records import Prompt, RewardError
from counterpoint.rollout.rewards.code_check import score_report
from counterpoint.rollout.rewards.sandbox.bwrap import SandboxResult
from counterpoint.rollout.tasks.base import TaskSource
from counterpoint.rollout.tasks.code import CodeDomain, function_body

DOMAIN = CodeDomain(CodeReward(sandbox=SandboxConfig(cpu_seconds=1, wall_seconds=2.0)))

# "return x plus 3", with tests chosen so that ` x * 2` passes exactly one of them.
PLUS_3 = Prompt(
    domain="code",
    prompt_id="code/test/0",
    text="# return x plus 3\ndef f(x):\n    return",
    reference={"entry": "f", "header": "def f(x):", "tests": [[[3], 6], [[0], 3], [[1], 4], [[5], 8]]},
)


def test_problems_are_deterministic_for_a_seed():
    first = [DOMAIN.make(random.Random(7), f"code/train/{i}") for i in range(3)]
    again = [DOMAIN.make(random.Random(7), f"code/train/{i}") for i in range(3)]
    assert first == again
    assert DOMAIN.make(random.Random(7), "a") != DOMAIN.make(random.Random(8), "a")


def test_prompts_are_short_headers_ending_in_return_and_references_are_json():
    for i in range(200):
        prompt, demo = DOMAIN.make(random.Random(i), f"code/train/{i}")
        assert len(prompt.text) < 80 and prompt.text.endswith("\n    return")
        comment, header, _ = prompt.text.split("\n")
        assert comment.startswith("# return ") and header == prompt.reference["header"]
        assert demo.startswith(" ") and demo.endswith("\n")
        assert len(prompt.reference["tests"]) == 4
        assert json.loads(json.dumps(prompt.reference)) == prompt.reference


def test_every_family_survives_the_held_out_eval_split():
    # TaskSource drops train problems whose text is in the eval split; a family with few distinct
    # texts would vanish from training.
    source = TaskSource(DOMAIN, seed=0, eval_size=64)
    batch = source.next_batch(400)
    assert source.cursor < 600
    instruction_words = {word for p, _ in batch for word in p.text.split("\n")[0].split()}
    family_words = set("plus minus times larger smaller upper lower reversed repeated length sum first".split())
    assert family_words <= instruction_words


def test_demonstrations_score_full_marks():
    for i in range(30):
        prompt, demo = DOMAIN.make(random.Random(1000 + i), f"code/train/{i}")
        [score] = DOMAIN.score_group(prompt, [demo])
        assert (score.reward, score.correct) == (1.0, True), (prompt.text, demo, score)
        assert score.info == {"passed": 4, "total": 4, "tests": ["pass"] * 4} and score.error is None


def test_wrong_and_partly_right_answers():
    right, partial, wrong = DOMAIN.score_group(PLUS_3, [" x + 3\n", " x * 2\n", " x + 4\n"])
    assert (right.reward, right.correct) == (1.0, True)
    assert (partial.reward, partial.correct) == (0.25, False)
    assert partial.info["tests"] == [
        "pass",
        "wrong_answer: returned 0",
        "wrong_answer: returned 2",
        "wrong_answer: returned 10",
    ]
    assert (partial.info["passed"], partial.info["total"], partial.info["error"]) == (1, 4, "wrong_answer")
    assert (wrong.reward, wrong.correct) == (0.0, False)
    assert (right.error, partial.error, wrong.error) == (None, RewardError.WRONG_ANSWER, RewardError.WRONG_ANSWER)


def test_garbage_after_the_function_is_ignored():
    [score] = DOMAIN.score_group(PLUS_3, [" x + 3\nprint('[false, false, false, false]')\nThe answer is 6!!\n\n  )"])
    assert score.correct


def test_garbage_scores_zero_with_a_reason():
    # the endless loop holds constant memory, so it ends by the clock on any machine
    responses = [" )(\n", " __import__('os')._exit(0)\n", " next(i for i in iter(int, 1) if i)\n"]
    syntax, crash, timeout = DOMAIN.score_group(PLUS_3, responses)
    assert (syntax.reward, syntax.correct, syntax.info["error"]) == (0.0, False, "syntax_error")
    assert (crash.reward, crash.info["error"]) == (0.0, "crash")
    assert (timeout.reward, timeout.info["error"]) == (0.0, "timeout")
    # the program's own failures: typed, and not ours
    assert [s.error for s in (syntax, crash, timeout)] == [
        RewardError.SYNTAX_ERROR,
        RewardError.CRASH,
        RewardError.TIMEOUT,
    ]
    assert not any(s.infrastructure_failure for s in (syntax, crash, timeout))


def test_a_memory_hog_is_stopped_by_the_address_space_limit():
    [hog] = DOMAIN.score_group(PLUS_3, [" [i for i in iter(int, 1)]\n"])
    # a fast machine fills the 256 MiB first, a slow one reaches the CPU limit first
    assert hog.reward == 0.0 and hog.info["error"] in ("memory_limit", "timeout")
    [big] = DOMAIN.score_group(PLUS_3, [" bytearray(2**30)\n"])
    assert (big.reward, big.info["error"]) == (0.0, "memory_limit")
    assert big.info["tests"][1:] == ["memory_limit: MemoryError"] * 3  # the process lives on


def test_cheats_do_not_pass():
    fake_verdict = " print('[\"done\", 4, 4]')\n"
    equal_to_anything = " type('A', (), {'__eq__': lambda s, o: True})()\n"
    true_for_one = " True\n"  # True == 1, but not the same type
    scores = DOMAIN.score_group(PLUS_3, [fake_verdict, equal_to_anything, true_for_one])
    assert [s.reward for s in scores] == [0.0, 0.0, 0.0]
    assert scores[1].info["error"] == "unsupported_result"


def test_function_body_keeps_the_return_line_and_indented_lines():
    assert function_body(" x + 3\nprint(1)\n") == " x + 3\n"
    assert function_body(" (x +\n        3)\n\n    junk\n") == " (x +\n        3)\n"


def _report(*messages, returncode=0, stderr="", timed_out=False) -> SandboxResult:
    stdout = "".join(json.dumps(m) + "\n" for m in messages)
    return SandboxResult(returncode, stdout, stderr, timed_out, 0.05)


def test_a_harness_that_fails_is_our_failure_not_the_programs():
    # bubblewrap could not start the program: no report at all
    dead = score_report(_report(returncode=1, stderr="bwrap: setting up uid map: Permission denied\n"), 4)
    assert (dead.reward, dead.correct, dead.error) == (0.0, False, RewardError.HARNESS_FAILURE)
    assert dead.infrastructure_failure and "uid map" in dead.info["detail"]
    assert dead.info["tests"] == ["harness: bwrap: setting up uid map: Permission denied"] + ["not_run"] * 3
    # the harness reported its own failure
    refused = score_report(_report(["error", "harness", "cannot make the harness non-dumpable"]), 4)
    assert refused.error is RewardError.HARNESS_FAILURE and refused.info["error"] == "harness"
    # one test the harness could not run, after a wrong answer: ours wins, the reward means nothing
    mixed = score_report(
        _report(
            ["test", 0, "wrong_answer: returned 0"],
            ["test", 1, "harness: cannot pass the arguments: bad"],
            ["test", 2, "pass"],
            ["test", 3, "pass"],
            ["done", 2, 4],
        ),
        4,
    )
    assert (mixed.reward, mixed.error, mixed.info["error"]) == (0.5, RewardError.HARNESS_FAILURE, "harness")
    # the harness ran fewer tests, or more, than were counted here: never a full score
    short = score_report(_report(["test", 0, "pass"], ["done", 1, 1]), 4)
    assert (short.reward, short.correct, short.error) == (0.25, False, RewardError.HARNESS_FAILURE)
    assert "found 1 tests, 4 were counted" in short.info["detail"]
    extra = score_report(_report(*[["test", i, "pass"] for i in range(5)], ["done", 5, 5]), 4)
    assert (extra.reward, extra.correct, extra.error) == (1.0, False, RewardError.HARNESS_FAILURE)
    lost = score_report(_report(["test", 0, "pass"], ["done", 2, 2]), 2)  # a report line went missing
    assert (lost.reward, lost.error, lost.info["tests"]) == (
        0.5,
        RewardError.HARNESS_FAILURE,
        ["pass", "harness: a test's report is missing"],
    )
    empty = score_report(_report(["done", 0, 0]), 0)
    assert (empty.reward, empty.correct, empty.error) == (0.0, False, RewardError.HARNESS_FAILURE)
    # a category we do not know is not the program's either
    odd = score_report(_report(["test", 0, "weird: thing"], ["done", 0, 1]), 1)
    assert odd.error is RewardError.HARNESS_FAILURE


def test_the_programs_failures_keep_their_category_and_what_followed_is_not_run():
    timed = score_report(_report(["test", 0, "pass"], timed_out=True), 4)
    assert (timed.reward, timed.error, timed.info["tests"]) == (
        0.25,
        RewardError.TIMEOUT,
        ["pass", "timeout: wall-clock or CPU limit of the sandbox", "not_run", "not_run"],
    )
    assert not timed.infrastructure_failure
    gone = score_report(_report(["error", "syntax_error", "SyntaxError: invalid syntax"]), 4)
    assert gone.error is RewardError.SYNTAX_ERROR and not gone.infrastructure_failure

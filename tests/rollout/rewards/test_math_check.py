"""Math checking: answer extraction, math-verify's verdicts (gold first), and deadlines that hold off
the main thread without stalling the worker."""

from __future__ import annotations

import random
import threading
import time

import pytest

from counterpoint.rollout.config import MathReward
from counterpoint.rollout.records import Prompt, RewardError
from counterpoint.rollout.rewards.math_check import MathChecker, extract_answer, last_boxed
from counterpoint.rollout.tasks.base import TaskSource
from counterpoint.rollout.tasks.math import ChampDomain, GsmDomain, MathDomain, champ_problems

PATHOLOGICAL = "\\boxed{9^{9^{9^{9^{9}}}}}"  # sympy computes the tower: minutes, and all the memory it gets


def _warm_checker(timeout_seconds: float):
    c = MathChecker(MathReward(timeout_seconds=timeout_seconds))
    c.warm_up()  # children started before any clock runs
    yield c
    c.close()


@pytest.fixture(scope="module")
def checker():
    """For verdicts: a deadline no loaded machine reaches on a sane answer."""
    yield from _warm_checker(30.0)


@pytest.fixture(scope="module")
def strict():
    """For deadlines: 2 s a check."""
    yield from _warm_checker(2.0)


def verdicts(checker, gold, responses):
    return [s.correct for s in checker.check([(gold, r) for r in responses])]


def test_last_boxed_balances_braces():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}} end") == "\\frac{1}{2}"
    assert last_boxed("\\fbox{7}") == "7"
    assert last_boxed("\\boxed{\\frac{1}{2") is None and last_boxed("no box") is None


def test_extraction_order_boxed_marker_last_line_final_number():
    assert extract_answer("so \\boxed{3}. The answer is 4\n5") == ["\\boxed{3}", "4", "5"]
    assert extract_answer("Step 1\n#### 19") == ["19", "#### 19"]
    assert extract_answer("it is 12\n\nHope this helps!") == ["Hope this helps!", "12"]
    assert extract_answer("") == []


def test_equivalent_forms_of_one_half(checker):
    forms = ["1/2", "0.5", "\\frac12", "$\\frac{1}{2}$", "\\boxed{\\frac12}", "50%", "The answer is 0.50.", "2/4"]
    assert verdicts(checker, "1/2", forms) == [True] * len(forms)


def test_sets_and_intervals(checker):
    assert verdicts(checker, "\\{1,2,3\\}", ["\\boxed{\\{3, 2, 1\\}}", "\\boxed{\\{1, 2\\}}"]) == [True, False]
    assert verdicts(checker, "(0,1]", ["Answer: (0, 1]", "\\boxed{[0,1]}", "\\boxed{(0,1)}"]) == [True, False, False]


def test_wrong_answers_and_garbage_score_zero(checker):
    scores = checker.check([("12", r) for r in [" 13", "banana", "", "\\boxed{", "}}}{{{\\frac", "\x00\udcff"]])
    assert [s.reward for s in scores] == [0.0] * 6
    assert scores[0].error is RewardError.WRONG_ANSWER and scores[0].info["extracted"].strip() == "13"
    assert scores[1].error is RewardError.NO_ANSWER and scores[2].error is RewardError.NO_ANSWER
    assert scores[2].info["detail"] == "no answer found"
    assert not any(s.infrastructure_failure for s in scores)  # the policy's failures, not ours
    assert checker.check([("12", "12")])[0].error is None


def test_a_gold_that_does_not_parse_is_our_failure_not_a_wrong_answer(checker):
    scores = checker.check([("", "\\boxed{12}"), ("", ""), ("12", "\\boxed{12}")])
    assert [s.error for s in scores[:2]] == [RewardError.GOLD_UNPARSABLE] * 2  # before "no answer"
    assert all(s.infrastructure_failure and s.reward == 0.0 and s.correct is False for s in scores[:2])
    assert scores[2].correct


def test_gold_first(checker):
    # verify is not symmetric: a gold of 12 accepts "12 apples", never the reverse reading.
    assert verdicts(checker, "12", [" 12 apples", " 12.0", "\\boxed{12}", " 21"]) == [True, True, True, False]


def test_very_long_output_is_cut_to_its_tail(checker, monkeypatch):
    from counterpoint.rollout.rewards.math_check import _Child

    sent, send = [], _Child.send
    monkeypatch.setattr(_Child, "send", lambda child, batch: (sent.append(batch), send(child, batch))[1])
    long = "blah " * 2_000_000 + "so the answer is \\boxed{42}"
    [score] = checker.check([("42", long)])
    assert score.correct
    # only the tail travels to the child: 10 MB in, at most max_response_chars per candidate out
    candidates = [c for batch in sent for _, cands in batch for c in cands]
    assert candidates and max(map(len, candidates)) <= checker.limits.max_response_chars
    [score] = checker.check([("42", "\\boxed{42} " + "blah " * 2_000)])  # the answer fell off the cut
    assert not score.correct


def test_pathological_expression_times_out_and_the_batch_goes_on(strict):
    active, standby = strict.pids()
    timeouts, restarts = strict.timeouts, strict.restarts
    started = time.monotonic()
    scores = strict.check([("1", "\\boxed{1}"), ("1", PATHOLOGICAL), ("2", "\\boxed{2}")])
    took = time.monotonic() - started
    assert [s.correct for s in scores] == [True, False, True]
    assert scores[1].error is RewardError.VERIFIER_TIMEOUT and scores[1].infrastructure_failure
    assert scores[0].error is None and scores[2].error is None
    # the stuck child was killed and the warm standby took over, once
    assert (strict.timeouts, strict.restarts) == (timeouts + 1, restarts + 1)
    assert strict.pids()[0] == standby and active not in strict.pids()
    # sympy computes this tower for minutes; the CPU deadline (2 s of the child's CPU) ends it
    # well before the wall-clock bound (2 s x 10) would, even with the child on half a core
    assert took < 12.0
    assert strict.check([("3", "3")])[0].correct  # and the worker keeps working


def test_timeouts_work_off_the_main_thread(strict):
    checker = strict
    # math-verify's own timeouts use signal.alarm, which raises outside the main thread.
    results = {}

    def score():
        results["scores"] = checker.check([("1", PATHOLOGICAL), ("1", "1")])

    thread = threading.Thread(target=score)
    thread.start()
    thread.join(timeout=30)
    assert [s.correct for s in results["scores"]] == [False, True]
    assert results["scores"][0].error is RewardError.VERIFIER_TIMEOUT


def test_throughput_of_a_group_round_trip(checker):
    rng = random.Random(0)
    pairs = [(str(a), f"The answer is {a + rng.choice([0, 1])}.") for a in range(200)]
    checker.check(pairs[:8])
    started = time.monotonic()
    checker.check(pairs)
    # The target is 200/s per worker on an idle machine; this only guards against a regression to
    # one process start per check.
    assert 200 / (time.monotonic() - started) > 50


def test_gsm_suite_is_seeded_and_its_demonstrations_pass():
    source = TaskSource(GsmDomain(), seed=0, eval_size=4)
    batch = source.next_batch(6)
    again = TaskSource(GsmDomain(), seed=0, eval_size=4).next_batch(6)
    assert [p.text for p, _ in batch] == [p.text for p, _ in again]
    assert len({p.text for p, _ in batch}) == 6
    for prompt, demo in batch:
        assert prompt.domain == "math" and "\\boxed" in prompt.text
        [right, wrong] = GsmDomain().score_group(prompt, [demo, "The final answer is \\boxed{-1}."])
        assert (right.correct, wrong.correct) == (True, False)


def test_champ_suite_keeps_only_checkable_answers():
    problems = champ_problems()
    assert 100 <= len(problems) <= 270
    assert all(not any(w in answer for w in ("possible", "exists", "only")) for _, _, _, answer in problems)
    dom = ChampDomain()
    prompt, demo = dom.make(random.Random(1), "c0")
    assert [s.correct for s in dom.score_group(prompt, [demo, "\\boxed{123456789}"])] == [True, False]


def test_math_prompt_reference_round_trip():
    p = Prompt("math", "x", "q", {"answer": "12"})
    assert MathDomain().score_group(p, [" 12"])[0].correct


def test_a_child_kept_off_the_cpu_is_not_timed_out():
    """The deadline counts the child's CPU time: a host so loaded that the child gets no core
    for longer than the deadline (here: the child stopped for 3x the deadline) still gets a
    verdict, not a timeout."""
    import os
    import signal

    checker = MathChecker(MathReward(timeout_seconds=0.5, wall_factor=20.0))
    try:
        checker.warm_up()
        child = checker.pids()[0]
        assert checker._children[0].cpu_seconds() > 0  # /proc is read: the deadline is CPU time
        os.kill(child, signal.SIGSTOP)
        threading.Timer(1.5, os.kill, (child, signal.SIGCONT)).start()
        started = time.monotonic()
        [score] = checker.check([("1/2", "\\boxed{\\frac{1}{2}}")])
        assert time.monotonic() - started >= 1.4  # it did wait for the child
        assert score.correct and checker.timeouts == 0
    finally:
        checker.close()


def test_the_wall_clock_still_bounds_a_check():
    import os
    import signal

    checker = MathChecker(MathReward(timeout_seconds=0.2, wall_factor=5.0))
    try:
        checker.warm_up()
        os.kill(checker.pids()[0], signal.SIGSTOP)  # never runs again: killed by the parent
        started = time.monotonic()
        [score] = checker.check([("1", "1")])
        assert score.error is RewardError.VERIFIER_TIMEOUT and checker.timeouts == 1
        assert 1.0 <= time.monotonic() - started < 15.0  # 0.2 s x 5, plus the standby taking over
        assert checker.check([("2", "2")])[0].correct
    finally:
        checker.close()


def test_a_checker_that_dies_mid_check_is_a_verifier_crash(strict):
    import os
    import signal

    assert strict.check([("1", "1")])[0].correct  # settles which child is active (an earlier test may
    victim = strict.pids()[0]  # have left a replacement starting): the one that just answered
    # the child dies mid-check: 0.5 s of wall clock is far below the 2 s of CPU its deadline needs
    threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
    scores = strict.check([("1", PATHOLOGICAL), ("2", "\\boxed{2}")])
    assert scores[0].error is RewardError.VERIFIER_CRASH and scores[0].infrastructure_failure
    assert "died" in scores[0].info["detail"]
    assert scores[1].correct  # the standby took over the rest of the batch


def test_a_verifier_that_raises_is_a_verifier_crash_not_a_wrong_answer():
    from counterpoint.rollout.rewards.math_check import _to_score

    score = _to_score((None, "verifier_crash", None, "ValueError: odd input"), ["\\boxed{1}"])
    assert (score.reward, score.correct, score.error) == (0.0, False, RewardError.VERIFIER_CRASH)
    assert score.info == {"extracted": "\\boxed{1}", "detail": "ValueError: odd input"}

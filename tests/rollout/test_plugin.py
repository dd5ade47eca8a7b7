"""The python kind's reward plugin: the user's function in a child process, with every failure a
typed failed sample (never a crash, never a silent 0) and a timeout that leaves no stuck worker."""

from __future__ import annotations

import textwrap
import time

import pytest

from counterpoint.rollout.domain_config import PythonReward
from counterpoint.rollout.records import RewardError, Score
from counterpoint.rollout.rewards.plugin import PluginImportError, PluginRunner, check_plugin

PLUGIN = """
import os, time
from counterpoint.rollout.records import Score

def exact_integer(prompt, response, row):
    print("user output goes to stderr")  # must not corrupt the answers
    return float(response.strip() == str(row["answer"]))

def scored(prompt, response, row):
    return Score(0.5, correct=True, info={"len": len(response)})

def raises(prompt, response, row):
    raise KeyError("no such field")

def slow(prompt, response, row):
    if response == "hang":
        time.sleep(60)
    return 1.0

def dies(prompt, response, row):
    os._exit(3)

def not_a_number(prompt, response, row):
    return None if response == "none" else float("nan")
"""


@pytest.fixture
def plugin_dir(tmp_path):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / "broken_rewards.py").write_text("import no_such_module_here\n")
    return [str(tmp_path)]


def runner(plugin_dir, name: str, timeout: float = 5.0) -> PluginRunner:
    return PluginRunner(PythonReward(function=f"my_rewards:{name}", timeout_seconds=timeout), plugin_dir)


def test_a_float_and_a_score_come_back(plugin_dir):
    r = runner(plugin_dir, "exact_integer")
    try:
        assert r.call("2+2?", " 4", {"answer": 4}) == Score(1.0)
        assert r.call("2+2?", "5", {"answer": 4}) == Score(0.0)
    finally:
        r.close()
    r = runner(plugin_dir, "scored")
    try:
        assert r.call("p", "abc", {}) == Score(0.5, True, {"len": 3})
    finally:
        r.close()


def test_an_exception_is_a_plugin_error_and_the_worker_goes_on(plugin_dir):
    r = runner(plugin_dir, "raises")
    try:
        score = r.call("p", "x", {})
        assert (score.reward, score.error) == (0.0, RewardError.PLUGIN_ERROR) and score.infrastructure_failure
        assert "KeyError: 'no such field'" in score.info["detail"] and "raise KeyError" in score.info["traceback"]
        assert r.call("p", "y", {}).error == RewardError.PLUGIN_ERROR and r.restarts == 0  # same child
    finally:
        r.close()
    r = runner(plugin_dir, "not_a_number")
    try:
        assert "returned NoneType, not a finite float" in r.call("p", "none", {}).info["detail"]
        assert "returned nan" in r.call("p", "nan", {}).info["detail"]
    finally:
        r.close()


def test_a_timeout_kills_the_child_and_a_fresh_one_serves_the_next_call(plugin_dir):
    r = runner(plugin_dir, "slow", timeout=1.0)
    try:
        r.warm_up()
        stuck = r._child.proc
        started = time.monotonic()
        score = r.call("p", "hang", {})
        assert time.monotonic() - started < 10
        assert score.error == RewardError.PLUGIN_TIMEOUT and score.infrastructure_failure and score.reward == 0.0
        assert stuck.poll() is not None  # killed, not left running
        assert r.call("p", "fine", {}) == Score(1.0) and r.restarts == 1
    finally:
        r.close()


def test_a_child_that_dies_is_a_plugin_error_and_replaced(plugin_dir):
    r = runner(plugin_dir, "dies")
    try:
        score = r.call("p", "x", {})
        assert score.error == RewardError.PLUGIN_ERROR and "exit code 3" in score.info["detail"]
        assert r.call("p", "x", {}).error == RewardError.PLUGIN_ERROR and r.restarts == 2
    finally:
        r.close()


def test_a_function_that_does_not_import_fails_at_the_check(plugin_dir):
    with pytest.raises(PluginImportError, match="No module named 'no_such_module_here'"):
        check_plugin(PythonReward(function="broken_rewards:f"), plugin_dir)
    with pytest.raises(PluginImportError, match="has no 'missing'"):
        check_plugin(PythonReward(function="my_rewards:missing"), plugin_dir)
    with pytest.raises(PluginImportError, match="No module named 'my_rewards'"):
        check_plugin(PythonReward(function="my_rewards:exact_integer"), [])  # not on the path
    check_plugin(PythonReward(function="my_rewards:exact_integer"), plugin_dir)

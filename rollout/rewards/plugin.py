"""A user's reward function (`domains.<name>.reward.function`, kind python), run with failure
isolation in a child process of the reward worker (`plugin_worker`).

Each call has a wall-clock deadline (`timeout_seconds`): past it the child is killed by PID and a
fresh one takes over for the next call, so a function that hangs never holds the worker. A function
that raises, returns something other than a finite float or a `Score`, or whose process dies, makes
that sample a `plugin_error`; a timeout makes it a `plugin_timeout`. Both are infrastructure
failures (the reward is no verdict on the response), so `run.max_reward_failure_fraction` stops a
run whose function keeps failing. A function that does not import is a `PluginImportError` at
start-up (the driver checks it before any actor starts).
"""

from __future__ import annotations

import os
import pickle
import selectors
import subprocess
import sys
import time

from counterpoint.rollout.domain_config import PythonReward
from counterpoint.rollout.records import RewardError, Score
from counterpoint.rollout.rewards.plugin_worker import _HEADER, send


class PluginImportError(RuntimeError):
    """The reward function could not be imported (the message holds the import's error)."""


def child_env(import_path: list[str] | None) -> dict[str, str]:
    """The environment of a plugin child: `import_path` ahead of PYTHONPATH."""
    env = dict(os.environ)
    parts = [*(import_path or []), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


CLOSED = ("closed",)
"""What `_Child.read` returns when the child closed its end (it exited or died)."""


class _Child:
    def __init__(self, function: str, import_path: list[str] | None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "counterpoint.rollout.rewards.plugin_worker", function],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(import_path),
        )
        self._buffer = b""

    def read(self, seconds: float):
        """The next message; None if none came within `seconds`, `CLOSED` if the child closed its end."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + seconds
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                if len(self._buffer) >= _HEADER.size:
                    size = _HEADER.size + _HEADER.unpack(self._buffer[: _HEADER.size])[0]
                    if len(self._buffer) >= size:
                        message, self._buffer = self._buffer[_HEADER.size : size], self._buffer[size:]
                        return pickle.loads(message)
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return CLOSED
                self._buffer += chunk

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            stream.close()


class PluginRunner:
    """Calls `reward.function` in a child process, one call at a time, each under its deadline."""

    def __init__(self, reward: PythonReward, import_path: list[str] | None = None):
        self.reward = reward
        self.import_path = import_path
        self._child: _Child | None = None
        self.restarts = 0

    def _ready_child(self) -> _Child:
        if self._child is not None and self._child.proc.poll() is None:
            return self._child
        if self._child is not None:
            self._child.kill()
            self.restarts += 1
        child = _Child(self.reward.function, self.import_path)
        message = child.read(self.reward.startup_seconds)
        if message is None or message[0] != "ready":
            code = child.proc.poll()
            child.kill()
            if message in (None, CLOSED):
                why = f"its process exited with {code}" if code is not None else "it did not start in time"
                raise PluginImportError(
                    f"{self.reward.function}: {why} (startup_seconds {self.reward.startup_seconds:g})"
                )
            raise PluginImportError(f"{self.reward.function} does not import: {message[1]}\n{message[2]}")
        self._child = child
        return child

    def warm_up(self) -> None:
        """Start the child and import the function now: a function that does not import fails here."""
        self._ready_child()

    def call(self, prompt: str, response: str, row: dict) -> Score:
        child = self._ready_child()
        try:
            send(child.proc.stdin, (prompt, response, row))
        except (BrokenPipeError, OSError):
            return self._failed(RewardError.PLUGIN_ERROR, "the reward function's process died before the call")
        reply = child.read(self.reward.timeout_seconds)
        if reply is None:
            return self._failed(
                RewardError.PLUGIN_TIMEOUT,
                f"ran past timeout_seconds ({self.reward.timeout_seconds:g} s); its process was killed",
            )
        if reply is CLOSED:
            try:
                code = child.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            return self._failed(RewardError.PLUGIN_ERROR, f"the reward function's process died (exit code {code})")
        if reply[0] == "error":
            info = {"detail": reply[1]}
            if reply[2]:
                info["traceback"] = reply[2]
            return Score(0.0, None, info, RewardError.PLUGIN_ERROR)
        _, reward, correct, info, error = reply
        try:
            return Score(reward, correct, info, error)
        except ValueError as err:  # an unknown error reason, or correct=False without one
            return Score(0.0, None, {"detail": f"returned an invalid Score: {err}"}, RewardError.PLUGIN_ERROR)

    def _failed(self, error: RewardError, detail: str) -> Score:
        if self._child is not None:
            self._child.kill()  # replaced on the next call
            self._child = None
            self.restarts += 1
        return Score(0.0, None, {"detail": detail}, error)

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child = None


def check_plugin(reward: PythonReward, import_path: list[str] | None = None) -> None:
    """Import the function in a child as a reward worker would; `PluginImportError` if it cannot."""
    runner = PluginRunner(reward, import_path)
    try:
        runner.warm_up()
    finally:
        runner.close()

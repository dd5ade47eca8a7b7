"""Math answer checking: extract the answer, compare it with the gold under math-verify, in a child
process with a deadline per check.

math-verify's own timeouts use `signal.alarm`, which raises outside a main thread (threaded and
async Ray actors), so they are switched off and each check runs in a persistent child process
(`math_verify_worker`) that the parent kills by PID when a check passes its deadline. The checks of
a call go to the child in one round-trip and come back one line each, so a timeout is pinned to
its check: that check scores 0 with `Score.error` `verifier_timeout`, a warm standby child takes
over and the rest of the batch goes on. Responses are cut to their last `max_response_chars` before extraction, so a
very long output costs no more than a short one. The limits are the math domain's reward section
(`MathReward`, `domains.<name>.reward`), whose defaults are declared there once.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
import weakref

from counterpoint.rollout.config import MathReward
from counterpoint.rollout.records import RewardError, Score

_DEFAULTS = MathReward()
_ANSWER_MARKER = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*|####\s*", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?")


def last_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (or \fbox{...}) in `text`, braces balanced; None if absent."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None  # unclosed: cut off by the length limit


def extract_answer(response: str, max_chars: int | None = None) -> list[str]:
    """Answer candidates for a response, best first: the last boxed answer, the text after the last
    "answer is"/"Answer:"/"####", the last non-empty line, the final number. The checker uses the
    first that math-verify can parse. Only the last `max_chars` are read (None: `MathReward`'s
    `max_response_chars`)."""
    tail = response[-(max_chars or _DEFAULTS.max_response_chars) :]
    candidates = []
    boxed = last_boxed(tail)
    if boxed is not None:
        candidates.append(f"\\boxed{{{boxed}}}")
    markers = list(_ANSWER_MARKER.finditer(tail))
    if markers:
        candidates.append(tail[markers[-1].end() :].strip().split("\n")[0])
    lines = [line for line in tail.split("\n") if line.strip()]
    if lines:
        candidates.append(lines[-1])
    numbers = _NUMBER.findall(tail)
    if numbers:
        candidates.append(numbers[-1])
    return [c for c in dict.fromkeys(candidates) if c.strip()]


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_CPU_POLL_SECONDS = 0.02
"""How often a waiting parent reads the child's CPU time (a check usually answers far sooner)."""


class _Child:
    """One math-verify worker process, spoken to over pipes."""

    def __init__(self, memory_bytes: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "counterpoint.rollout.rewards.math_verify_worker", str(memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        self._buffer = b""
        self.ready = False
        self.eof = False
        """Its output closed: it exited (the kernel closes a dying process's pipes before its exit
        status can be collected, so `proc.poll()` may still say "running" for a moment)."""

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the child has used, from /proc; None where it cannot be read."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()  # the name may hold spaces and ")"
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            return None

    def read_line(self, wall_seconds: float, cpu_seconds: float | None = None) -> str | None:
        """The next line of output, or None if first the child used `cpu_seconds` of CPU (where
        /proc tells), `wall_seconds` passed, or the child died."""
        fd = self.proc.stdout.fileno()
        wall_deadline = time.monotonic() + wall_seconds
        cpu_start = self.cpu_seconds() if cpu_seconds is not None else None
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = wall_deadline - time.monotonic()
                if left <= 0:
                    return None
                if cpu_start is not None:
                    used = self.cpu_seconds()
                    if used is not None and used - cpu_start >= cpu_seconds:
                        return None
                    left = min(left, _CPU_POLL_SECONDS)
                if not selector.select(left):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.eof = True
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def wait_ready(self, seconds: float) -> None:
        if not self.ready:
            if self.read_line(seconds) != "ready":
                self.kill()
                raise RuntimeError("the math-verify worker process did not start (is math-verify installed?)")
            self.ready = True

    def send(self, batch: list) -> None:
        self.proc.stdin.write((json.dumps(batch) + "\n").encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


def _kill_all(children: list[_Child | None]) -> None:
    for i, child in enumerate(children):
        if child is not None:
            child.kill()
            children[i] = None


class MathChecker:
    """Checks (gold, response) pairs with math-verify in a child process, each under a deadline.

    Thread-safe; one child does one check at a time. A standby child is kept warm so a timeout
    costs its deadline and not a fresh start (~1-3 s of imports) as well.
    """

    def __init__(self, limits: MathReward = MathReward(), standby: bool = True):
        self.limits = limits
        self.standby = standby
        self._lock = threading.Lock()
        self._children: list[_Child | None] = [None, None]  # [active, standby]
        self._finalizer = weakref.finalize(self, _kill_all, self._children)
        self.timeouts = 0
        self.restarts = 0

    def _spawn(self) -> _Child:
        return _Child(self.limits.memory_mib * 2**20)

    def _active(self) -> _Child:
        for i, child in enumerate(self._children):
            # A child dies with the thread that started it (PR_SET_PDEATHSIG follows the thread):
            # one started while a short-lived thread checked is gone by the next call. Replace it
            # rather than count its absence as a verifier crash.
            if child is not None and child.proc.poll() is not None:
                child.kill()
                self._children[i] = None
        if self._children[0] is None:
            self._children[0] = self._children[1] or self._spawn()
            self._children[1] = None
        if self.standby and self._children[1] is None:
            self._children[1] = self._spawn()  # imports in the background while the active works
        self._children[0].wait_ready(self.limits.startup_seconds)
        return self._children[0]

    def _replace_active(self) -> None:
        self._children[0].kill()
        self._children[0] = None
        self.restarts += 1

    def pids(self) -> list[int]:
        """Process ids of the live child processes (for monitoring and benchmarks)."""
        return [c.proc.pid for c in self._children if c is not None]

    def warm_up(self) -> None:
        """Start the child processes now and check one answer, so a reward worker fails at start-up
        (math-verify missing) rather than on its first batch, and the first batch is not slow."""
        if not self.check([("1", "1")])[0].correct:
            raise RuntimeError("the math checker rejects 1 = 1")

    def check(self, pairs: list[tuple[str, str]]) -> list[Score]:
        """One Score per (gold, response): reward 1 when the response's answer equals the gold."""
        extracted = [extract_answer(response, self.limits.max_response_chars) for _, response in pairs]
        jobs = list(dict.fromkeys((gold, tuple(cands)) for (gold, _), cands in zip(pairs, extracted)))
        results = self._run([[gold, list(cands)] for gold, cands in jobs])
        by_job = dict(zip(jobs, results))
        return [_to_score(by_job[(gold, tuple(cands))], cands) for (gold, _), cands in zip(pairs, extracted)]

    def _run(self, batch: list) -> list[tuple]:
        """(verdict, reason, index of the candidate used, detail) per [gold, candidates] of the
        batch (the child's protocol, `math_verify_worker`)."""
        results: list[tuple] = []
        with self._lock:
            while len(results) < len(batch):
                child = self._active()
                child.send(batch[len(results) :])
                while len(results) < len(batch):
                    line = child.read_line(
                        self.limits.timeout_seconds * self.limits.wall_factor, cpu_seconds=self.limits.timeout_seconds
                    )
                    if line is None:  # past a deadline, or the child died (memory limit)
                        dead = child.eof or child.proc.poll() is not None
                        if dead:
                            try:
                                code = child.proc.wait(timeout=5)
                            except subprocess.TimeoutExpired:  # closed its output but lives on
                                code = "unknown"
                            results.append((None, RewardError.VERIFIER_CRASH, None, f"the checker died (exit {code})"))
                        else:
                            seconds = self.limits.timeout_seconds
                            results.append((None, RewardError.VERIFIER_TIMEOUT, None, f"no verdict in {seconds:g} s"))
                        self.timeouts += not dead
                        self._replace_active()
                        break
                    results.append(tuple(json.loads(line)))
        return results

    def close(self) -> None:
        """Kill the child processes; a later check starts new ones."""
        with self._lock:
            _kill_all(self._children)


def _to_score(result: tuple, candidates: list[str]) -> Score:
    """The Score of one check: correct, a wrong answer, or the reason there is no verdict
    (`RewardError`: the policy's `no_answer`, or our `verifier_timeout`, `verifier_crash`,
    `gold_unparsable`), with a human-readable `info["detail"]`."""
    verdict, reason, used, detail = result
    info: dict = {"extracted": candidates[used if used is not None else 0][:80] if candidates else None}
    ok = bool(verdict) and reason is None
    error = None if ok else RewardError(reason) if reason is not None else RewardError.WRONG_ANSWER
    if detail is not None:
        info["detail"] = detail
    return Score(1.0 if ok else 0.0, ok, info, error)


_shared: dict[MathReward, MathChecker] = {}
_shared_lock = threading.Lock()


def shared_checker(limits: MathReward = MathReward()) -> MathChecker:
    """One checker per process and limits, so the math suites of a reward worker share its children."""
    with _shared_lock:
        if limits not in _shared:
            _shared[limits] = MathChecker(limits)
        return _shared[limits]

"""Scoring model-written code: run its tests in the sandbox through the harness, turn the harness's
report into a Score with per-test results and a pass fraction.

The sandbox (`sandbox.bwrap.run_python`) contains what the code can do to the host; the harness
(`sandbox.harness`, run inside it) keeps the candidate away from the tests and the verdict. Every
failure carries a category in `info["error"]` and a human-readable `info["detail"]`:
`syntax_error`, `exception`, `memory_limit` (a call ran out of the sandbox's address space),
`wrong_answer`, `timeout`, `crash` (the candidate's process died or
was killed by a signal), `unsupported_result`, `result_too_large`, or `harness` (our fault).
`info["tests"]` has one entry per test: "pass", the failure, or "not_run" after the candidate's
process ended. `Score.error` is the typed reason (`RewardError`): the program's category as it
is, or `harness_failure` for anything the harness did not judge (the category `harness`, a run
that ended without a report, fewer tests than counted, a category this module does not know).
A harness failure anywhere in a run is the Score's error even after a failed test: the reward is
then not a verdict on the program.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from counterpoint.rollout.config import SandboxConfig
from counterpoint.rollout.records import RewardError, Score
from counterpoint.rollout.rewards.sandbox import harness
from counterpoint.rollout.rewards.sandbox.bwrap import SANDBOX_PYTHON, SandboxResult, SandboxUnavailable, run_python
from counterpoint.rollout.rewards.sandbox.harness import encode

HARNESS_SOURCE = Path(harness.__file__).read_text()
# The program the sandbox runs: it executes the harness compiled ahead, which saves compiling
# ~300 lines (~10 ms of CPU) in every run. Host-made bytecode, so marshal is safe here.
HARNESS_BOOT = "import marshal\nexec(marshal.loads(open('/tmp/harness.bin', 'rb').read()), {'__name__': '__main__'})\n"


@lru_cache(maxsize=1)
def harness_bytecode() -> bytes:
    """The harness compiled by the sandbox's own Python (so its bytecode version always matches)."""
    compile_it = (
        "import marshal, sys; sys.stdout.buffer.write(marshal.dumps(compile(sys.stdin.read(), 'harness.py', 'exec')))"
    )
    try:
        done = subprocess.run([SANDBOX_PYTHON, "-I", "-S", "-c", compile_it], input=HARNESS_SOURCE.encode(),
                              capture_output=True, timeout=60, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        raise SandboxUnavailable(f"{SANDBOX_PYTHON} cannot compile the test harness: {e}") from e
    return done.stdout


def io_tests(cases: list) -> dict:
    """Tests as (positional args, expected return value) pairs, compared with exact types."""
    return {"kind": "io", "cases": [[encode(list(args)), encode(expected)] for args, expected in cases]}


def check_tests(prompt: str, test: str) -> dict:
    """A HumanEval-style test: `test` defines `check(candidate)`; `prompt` its helpers."""
    return {"kind": "check", "prompt": prompt, "test": test}


def count_tests(tests: dict) -> int:
    if tests["kind"] == "io":
        return len(tests["cases"])
    return harness.count_check_tests(tests["test"])


def call_timeout(limits: SandboxConfig) -> float:
    """Seconds a call may spend idle (sleeping, blocked, stopped) before the harness gives up on
    it: a sleeping candidate is reported per test before the wall clock ends the whole run. Busy
    work is bounded by the CPU limit, not by this."""
    return max(0.1, min(limits.cpu_seconds + 0.5, 0.6 * limits.wall_seconds))


def run_tests(candidate: str, entry: str, tests: dict, limits: SandboxConfig) -> Score:
    """Run `tests` against the function `entry` defined by the source `candidate`."""
    spec = {**tests, "call_timeout": call_timeout(limits), "ready_timeout": limits.wall_seconds}
    result = run_python(
        HARNESS_BOOT,
        limits,
        args=[entry],
        files={"/tmp/harness.bin": harness_bytecode(), "/tmp/candidate.py": candidate},
        stdin=json.dumps(spec).encode(),
    )
    return score_report(result, count_tests(tests))


def run_many(jobs: list[tuple[str, str, dict]], limits: SandboxConfig, workers: int) -> list[Score]:
    """`run_tests` over (candidate, entry, tests) jobs, each distinct job run once, `workers` at a time
    (each run mostly waits on its subprocess)."""
    keys = [json.dumps(job) for job in jobs]
    distinct = dict(zip(keys, jobs))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        scores = dict(zip(distinct, pool.map(lambda job: run_tests(*job, limits), distinct.values())))
    return [scores[k] for k in keys]


def score_report(result: SandboxResult, total: int) -> Score:
    """The Score for one harness run of `total` tests (as counted here); tests the run never
    reached count as failed, and a harness that ran another number of tests failed."""
    reasons: list[str] = []
    error: list | None = None
    reported = None
    for line in result.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue  # only the harness writes here, but a cut-off last line is possible
        if message[0] == "test":
            reasons.append(message[2])
        elif message[0] == "error":
            error = message
        elif message[0] == "done":
            reported = message[2]
    if error is not None:
        stopped = f"{error[1]}: {error[2]}"
    elif result.timed_out:
        stopped = "timeout: wall-clock or CPU limit of the sandbox"
    elif reported is None:
        stopped = f"harness: {(result.stderr.strip().splitlines() or ['no report'])[-1][:200]}"
    elif reported != total:
        stopped = f"harness: the harness found {reported} tests, {total} were counted"
    else:
        stopped = "harness: no tests to run" if total == 0 else "harness: a test's report is missing"
    if len(reasons) < total:  # the run stopped early: the next test gets the cause, the rest never ran
        reasons += [stopped] + ["not_run"] * (total - len(reasons) - 1)
    reasons = reasons[:total]
    passed = sum(r == "pass" for r in reasons)
    info: dict = {"passed": passed, "total": total, "tests": [r[:80] for r in reasons]}
    failures = [r for r in reasons if r != "pass"]
    if (reported is not None and reported != total and stopped not in failures) or total == 0:
        failures.insert(0, stopped)
    reason = None
    if failures:
        # ours first: one harness failure makes the whole reward meaningless. "not_run" only
        # follows the failure that ended the candidate's process, which is the reason.
        judged = [f for f in failures if not f.startswith("not_run")] or failures
        first = next((f for f in judged if _reason(f).infrastructure), judged[0])
        category, _, detail = first.partition(": ")
        info.update(error=category, detail=detail[:200])
        reason = _reason(first)
    correct = total > 0 and not failures
    return Score(passed / total if total else 0.0, correct, info, reason)


PROGRAM_FAILURES = frozenset(
    {
        RewardError.SYNTAX_ERROR,
        RewardError.EXCEPTION,
        RewardError.MEMORY_LIMIT,
        RewardError.WRONG_ANSWER,
        RewardError.TIMEOUT,
        RewardError.CRASH,
        RewardError.UNSUPPORTED_RESULT,
        RewardError.RESULT_TOO_LARGE,
    }
)
"""The harness categories that are the program's own failures; every other one is ours."""


def _reason(failure: str) -> RewardError:
    """The typed reason of one test's "category: detail"."""
    category = failure.partition(": ")[0]
    return RewardError(category) if category in PROGRAM_FAILURES else RewardError.HARNESS_FAILURE

"""The test harness that runs inside the sandbox (Debian's /usr/bin/python3, standard library only).

The sandbox keeps model-written code away from the host; this harness keeps it away from the
verdict. The program is this file; the candidate's source is /tmp/candidate.py; the tests come on
stdin. The harness forks first, and only the child ever runs candidate code: it closes stdin,
points stdout and stderr at /dev/null, defines the candidate and then answers calls over a pipe
(arguments in, a return value out, both as plain data). The parent reads the tests only after the
fork, is non-dumpable (so the child can neither read its memory nor open its descriptors through
/proc), is PID 1 of the sandbox (so the child cannot kill it), and alone runs the checks and
prints the verdict. So a candidate cannot see the expected values, cannot print a verdict, cannot
patch what compares its answers, and gets nothing for an object whose `__eq__` always says True:
only builtin values cross the pipe.

Argument: the name of the candidate function. Input on stdin, JSON: {"call_timeout": seconds,
"ready_timeout": seconds, "kind": "io", "cases": [[args, expected], ...]}
with args and expected in the `encode` format, or {"kind": "check", "prompt": ..., "test": ...} to
run a HumanEval-style `check(candidate)`, each top-level statement of `check` that contains an
assert counting as one test. Output on stdout, one JSON line each: ["test", index, reason] ("pass"
or "category: detail") as each test ends, then ["done", passed, total], or ["error", category, detail].
"""

from __future__ import annotations

import json
import os
import resource
import select
import sys
import time

# Not from the signal module, whose import (enum) costs ~9 ms of every run. Linux x86-64 numbers.
SIGKILL, SIGXCPU = 9, 24
SIGNAL_NAMES = {4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE",
                15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS"}  # fmt: skip

CANDIDATE_PATH = "/tmp/candidate.py"
MAX_REPLY_BYTES = 1 << 20
IDLE_POLL_SECONDS = 0.02
PR_SET_DUMPABLE = 4


# --- values across the pipe -------------------------------------------------------------------


def encode(value, depth: int = 0):
    """A builtin value as JSON, keeping types JSON loses (tuple, set, float vs int, dict keys)."""
    if depth > 100:
        raise ValueError("value nested too deeply")
    kind = type(value)  # exact types: a subclass could carry its own __eq__
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return ["f", repr(value)]
    if kind is complex:
        return ["c", [repr(value.real), repr(value.imag)]]
    if kind is bytes:
        return ["b", value.hex()]
    if kind in (list, tuple, set, frozenset):
        tag = {list: "l", tuple: "t", set: "s", frozenset: "z"}[kind]
        return [tag, [encode(v, depth + 1) for v in value]]
    if kind is dict:
        return ["d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]]
    raise TypeError(f"cannot pass a {kind.__name__} value")


def decode(data):
    """The inverse of `encode`; rejects anything else."""
    if data is None or type(data) in (bool, int, str):
        return data
    if type(data) is not list or len(data) != 2 or type(data[0]) is not str:
        raise ValueError("malformed value")
    tag, body = data
    if tag == "f":
        return float(body)
    if tag == "c":
        return complex(float(body[0]), float(body[1]))
    if tag == "b":
        return bytes.fromhex(body)
    if tag in ("l", "t", "s", "z"):
        items = [decode(v) for v in body]
        return {"l": list, "t": tuple, "s": set, "z": frozenset}[tag](items)
    if tag == "d":
        return {decode(k): decode(v) for k, v in body}
    raise ValueError(f"unknown tag {tag!r}")


def _describe(error: BaseException) -> str:
    try:
        text = str(error)
    except BaseException:  # a hostile __str__
        text = ""
    return f"{type(error).__name__}: {text}"[:200].rstrip(": ")


# --- the child: the only process that runs candidate code ----------------------------------------


def _send(fd: int, message) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _serve(entry: str, requests: int, replies: int) -> None:
    """Define the candidate and answer calls until the parent closes the request pipe."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        with open(CANDIDATE_PATH, "rb") as f:
            code = compile(f.read(), "candidate.py", "exec")
    except (SyntaxError, ValueError) as e:
        _send(replies, ["syntax_error", _describe(e)])
        return
    namespace = {"__name__": "__candidate__"}
    try:
        exec(code, namespace)
        function = namespace[entry]
    except BaseException as e:
        _send(replies, ["exception", f"while defining the candidate: {_describe(e)}"])
        return
    _send(replies, ["ready"])
    with os.fdopen(requests, "rb") as calls:
        for line in calls:
            try:
                value = function(*decode(json.loads(line)))
            except MemoryError as e:  # the sandbox's address-space limit, not a bug in our code
                _send(replies, ["memory_limit", _describe(e)])
                continue
            except BaseException as e:
                _send(replies, ["exception", _describe(e)])
                continue
            try:
                reply = ["ok", encode(value)]
            except BaseException as e:
                reply = ["unsupported_result", _describe(e)]
            _send(replies, reply)


# --- the parent: reads the tests, calls the child, judges --------------------------------------


class CandidateGone(Exception):
    """The candidate process ended, hung or misbehaved; no further calls are possible."""

    def __init__(self, category: str, detail: str):
        super().__init__(f"{category}: {detail}")
        self.category, self.detail = category, detail


class CandidateFailed(Exception):
    """One call raised inside the candidate or returned what cannot cross the pipe."""

    def __init__(self, category: str, detail: str):
        super().__init__(f"{category}: {detail}")
        self.category, self.detail = category, detail


class Candidate:
    """A callable that forwards its arguments to the child and returns the child's answer."""

    def __init__(self, pid: int, requests: int, replies: int, timeout: float):
        self.pid, self.requests, self.replies, self.timeout = pid, requests, replies, timeout
        self.buffer = b""
        self.gone: CandidateGone | None = None

    def _runnable(self) -> bool:
        """Whether the child is running or waiting for a CPU (not sleeping, blocked or stopped)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            return False

    def _read_reply(self):
        """The child's next reply. The timeout counts only time the child spends not runnable
        (sleeping, blocked, stopped): busy work is bounded by the CPU limit instead, so a loaded
        host, which delays a busy child, does not turn a correct answer into a timeout."""
        idle = 0.0
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.replies], [], [], IDLE_POLL_SECONDS)
            if not ready:
                if not self._runnable():
                    idle += IDLE_POLL_SECONDS
                if idle >= self.timeout:
                    self._end("timeout", f"no answer, idle for {self.timeout:g} s")
                continue
            chunk = os.read(self.replies, 65536)
            if not chunk:
                self._end(*self._exit_reason())
            self.buffer += chunk
            if len(self.buffer) > MAX_REPLY_BYTES:
                self._end("result_too_large", f"over {MAX_REPLY_BYTES} bytes")
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not (type(reply) is list and len(reply) in (1, 2) and type(reply[0]) is str):
            self._end("crash", "garbled reply from the candidate process")
        return reply

    def _exit_reason(self) -> tuple[str, str]:
        """Why the child closed its end of the pipe: how it ended (killed if it lingers)."""
        deadline = time.monotonic() + self.timeout
        while True:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:  # closed its pipe but keeps running
                os.kill(self.pid, SIGKILL)
            time.sleep(0.005)
        self.pid = 0
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            cpu_limit = resource.getrlimit(resource.RLIMIT_CPU)[0]
            if sig in (SIGKILL, SIGXCPU) and usage.ru_utime + usage.ru_stime >= 0.9 * cpu_limit:
                return "timeout", "CPU time limit"
            return "crash", f"killed by {SIGNAL_NAMES.get(sig, f'signal {sig}')}"
        return "crash", f"candidate process exited with status {os.WEXITSTATUS(status)}"

    def _end(self, category: str, detail: str):
        if self.pid:
            os.kill(self.pid, SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0
        self.gone = CandidateGone(category, detail)
        raise self.gone

    def wait_ready(self, timeout: float):
        """Wait for the child to define the candidate: on a loaded host a slow start is not the
        candidate's fault, so this gets the run's whole wall clock, not one call's."""
        self.timeout, per_call = timeout, self.timeout
        try:
            reply = self._read_reply()
        finally:
            self.timeout = per_call
        if reply[0] in ("syntax_error", "exception") and len(reply) == 2:
            self._end(reply[0], str(reply[1])[:200])
        if reply != ["ready"]:
            self._end("crash", "garbled reply from the candidate process")

    def __call__(self, *args):
        if self.gone:
            raise CandidateGone("not_run", f"the candidate process ended earlier ({self.gone.category})")
        try:
            request = json.dumps(encode(list(args))) + "\n"
        except (TypeError, ValueError) as e:
            raise CandidateFailed("harness", f"cannot pass the arguments: {e}") from None
        try:
            os.write(self.requests, request.encode())  # small; the child reads line by line
        except BrokenPipeError:
            self._end(*self._exit_reason())
        reply = self._read_reply()
        status, body = reply[0], reply[-1]
        if status in ("exception", "memory_limit", "unsupported_result"):
            raise CandidateFailed(status, str(body)[:200])
        if status != "ok" or len(reply) != 2:
            self._end("crash", "garbled reply from the candidate process")
        try:
            return decode(body)
        except (TypeError, ValueError, RecursionError) as e:
            raise CandidateFailed("unsupported_result", str(e)[:100]) from None


def _reason(error: BaseException) -> str:
    if isinstance(error, (CandidateGone, CandidateFailed)):
        return f"{error.category}: {error.detail}"
    if isinstance(error, AssertionError):
        tb, where = error.__traceback__, []
        while tb is not None:  # (the traceback module costs ~6 ms to import)
            if tb.tb_frame.f_code.co_filename == "test.py":
                where.append(f"line {tb.tb_lineno}")
            tb = tb.tb_next
        return (
            f"wrong_answer: {error.args[0] if error.args else 'assertion failed'}{' at ' + where[-1] if where else ''}"
        )
    return f"exception: {_describe(error)}"


def _io_tests(spec: dict, candidate: Candidate):
    """Each case: the candidate's return value must equal the expected one, with the same type."""
    for args, expected in spec["cases"]:
        expected = decode(expected)

        def test(args=decode(args), expected=expected):
            got = candidate(*args)
            if not (type(got) is type(expected) and got == expected):
                raise AssertionError(f"returned {repr(got)[:40]}")

        yield test


def _check_tests(spec: dict, candidate: Candidate):
    """The top-level statements of `check(candidate)`; each containing an assert is one test, run
    after the statements without asserts that precede it (its setup)."""
    import ast  # only here: ~5 ms

    namespace = {"__name__": "__harness__"}
    exec(compile(spec["prompt"], "prompt.py", "exec"), namespace)  # helpers the tests call
    exec(compile(spec["test"], "test.py", "exec"), namespace)
    check = next(n for n in ast.parse(spec["test"]).body if isinstance(n, ast.FunctionDef) and n.name == "check")
    namespace[check.args.args[0].arg] = candidate
    namespace[spec["entry"]] = candidate  # some checks call the function by name (HumanEval/33)
    pending: list = []
    for statement in check.body:
        pending.append(statement)
        if any(isinstance(node, ast.Assert) for node in ast.walk(statement)):
            code = compile(ast.Module(body=pending, type_ignores=[]), "test.py", "exec")
            pending = []
            yield lambda code=code: exec(code, namespace)


def count_check_tests(test: str) -> int:
    """How many tests `_check_tests` finds in a HumanEval-style test source."""
    import ast

    check = next(n for n in ast.parse(test).body if isinstance(n, ast.FunctionDef) and n.name == "check")
    return sum(any(isinstance(node, ast.Assert) for node in ast.walk(s)) for s in check.body)


def _print(message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    import ctypes

    # Non-dumpable: a process of the same uid may no longer read /proc/1/mem, /proc/1/fd/0 (the
    # tests) or ptrace this one. Fail closed if that cannot be set.
    if ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        _print(["error", "harness", "cannot make the harness non-dumpable"])
        return
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    entry = sys.argv[1]
    pid = os.fork()
    if pid == 0:
        try:
            os.close(requests_w)
            os.close(replies_r)
            _serve(entry, requests_r, replies_w)
        finally:
            os._exit(0)
    os.close(requests_r)
    os.close(replies_w)
    spec = json.loads(sys.stdin.read())  # only after the fork: the child never holds the tests
    candidate = Candidate(pid, requests_w, replies_r, float(spec["call_timeout"]))
    try:
        candidate.wait_ready(float(spec["ready_timeout"]))
    except CandidateGone as e:
        _print(["error", e.category, e.detail])
        return
    spec["entry"] = entry
    tests = _io_tests(spec, candidate) if spec["kind"] == "io" else _check_tests(spec, candidate)
    passed = total = 0
    for index, test in enumerate(tests):
        try:
            test()
            reason = "pass"
        except Exception as e:
            reason = _reason(e)
        passed += reason == "pass"
        total += 1
        _print(["test", index, reason[:200]])
    _print(["done", passed, total])


if __name__ == "__main__":
    main()

"""The child process that runs a user's reward function: `python -m
counterpoint.rollout.rewards.plugin_worker MODULE:FUNCTION`.

It imports the function once, answers "ready" (or why the import failed), then serves calls:
length-prefixed pickles over stdin and a private copy of stdout, `(prompt, response, row)` in and
`("ok", reward, correct, info, error)` or `("error", message, traceback)` out. The user's code may
print: its stdout goes to stderr, so it can never corrupt the answers. The child dies with its
parent (PR_SET_PDEATHSIG), and a call that never returns is the parent's to time out and kill.
"""

from __future__ import annotations

import ctypes
import importlib
import math
import os
import pickle
import signal
import struct
import sys
import traceback

PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct(">I")


def send(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(stream, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def receive(stream):
    header = _read_exact(stream, _HEADER.size)
    if header is None:
        return None
    body = _read_exact(stream, _HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


def load(spec: str):
    """The function `module:function` names, imported from sys.path (cwd and PYTHONPATH first)."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    fn = getattr(module, attr, None)
    if fn is None:
        raise AttributeError(f"module {module_name!r} ({getattr(module, '__file__', '?')}) has no {attr!r}")
    if not callable(fn):
        raise TypeError(f"{spec} is a {type(fn).__name__}, not a function")
    return fn


def answer(value) -> tuple:
    """A returned value as the parent reads it: a finite float, or a Score's fields."""
    from counterpoint.rollout.records import Score

    if isinstance(value, Score):
        error = None if value.error is None else str(value.error)
        return ("ok", float(value.reward), value.correct, dict(value.info), error)
    if isinstance(value, bool | int | float) and math.isfinite(float(value)):
        return ("ok", float(value), None, {}, None)
    what = repr(value)[:80] if isinstance(value, int | float) else type(value).__name__
    return ("error", f"returned {what}, not a finite float or a Score", "")


def main() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        os._exit(1)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the user's prints go to stderr, never into the answers
    sys.stdout = sys.stderr
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        fn = load(sys.argv[1])
    except BaseException as err:  # noqa: BLE001 - whatever the user's import raised, say so
        send(out, ("import_error", f"{type(err).__name__}: {err}", traceback.format_exc(limit=-8)))
        return
    send(out, ("ready",))
    stdin = sys.stdin.buffer
    while True:
        request = receive(stdin)
        if request is None:
            return
        try:
            reply = answer(fn(*request))
        except BaseException as err:  # noqa: BLE001 - the user's exception is a failed sample
            reply = ("error", f"{type(err).__name__}: {err}"[:2000], traceback.format_exc(limit=-8)[-4000:])
        try:
            send(out, reply)
        except Exception as err:  # noqa: BLE001 - e.g. a Score whose info cannot be pickled
            send(out, ("error", f"its result cannot be sent back: {type(err).__name__}: {err}", ""))


if __name__ == "__main__":
    main()

"""The exit statuses of every `counterpoint` command, in one table, and SIGTERM as an orderly stop.

Both the cluster's commands (`run`, `submit`, `job`) and the control plane's (`schedule`, `serve`)
exit with these numbers; `--help` prints the table (`epilog()`) and docs/operations.md explains it.
The numbers 3-6 are ours; 126-165 are left to the shell (not found, not executable, 128 + signal),
except the two a signal gives: 130 (SIGINT, Ctrl-C) and 143 (SIGTERM).

`sigterm_unwinds()` is what the `counterpoint` entry point runs every command inside: a SIGTERM
raises `Terminated` (a SystemExit with code 143) in the main thread, so the stack unwinds as it
does for Ctrl-C and every `finally` runs (a run shuts its Ray down, `serve` stops its server)
before the process exits 143.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

OK = 0
FAILURE = 1
USAGE = 2
CONFLICT = 3
AUTH = 4
NOT_FOUND = 5
UNREACHABLE = 6
INTERRUPTED = 130
TERMINATED = 143

TABLE: tuple[tuple[int, str], ...] = (
    (OK, "done; submit (waiting) and `job logs --follow`: the job SUCCEEDED"),
    (FAILURE, "what was run failed: a job FAILED or was STOPPED, a run failed, the server failed (5xx)"),
    (USAGE, "bad arguments or config, or a request the API refused as invalid (400, 413, 422)"),
    (CONFLICT, "409 from the control plane: a stale --base-version (read the schedule again), a finished run or stage"),
    (AUTH, "the token was refused: missing or unknown (401), a viewer token on a write (403); Ray's token too"),
    (NOT_FOUND, "no such run, stage, domain, schedule version or job (404)"),
    (UNREACHABLE, "the control plane or the Ray Jobs API cannot be reached: refused, timed out, unknown host"),
    (INTERRUPTED, "Ctrl-C (SIGINT) stopped the command; a waiting submit detaches and the job keeps running"),
    (TERMINATED, "SIGTERM stopped the command after its cleanup (a run shuts its Ray down, serve its server)"),
)


def epilog() -> str:
    """The table as `--help` prints it."""
    return "exit status:\n" + "\n".join(f"  {code:<4} {what}" for code, what in TABLE) + "\n"


def for_http_status(status: int | None) -> int:
    """The exit status for an error answer of the control plane (None: refused before any request)."""
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    if status == 409:
        return CONFLICT
    if status is None or 400 <= status < 500:
        return USAGE
    return FAILURE


class Terminated(SystemExit):
    """Raised in the main thread by the SIGTERM handler: unwinds like Ctrl-C (every `finally`
    runs; `except Exception` does not catch it) and, uncaught, exits with 143."""

    def __init__(self) -> None:
        super().__init__(TERMINATED)

    def __str__(self) -> str:  # what a run's `error` event records
        return "stopped by SIGTERM"


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` in the main thread, once: a second SIGTERM during
    the cleanup is ignored so that the cleanup finishes. The previous handler is put back on exit.
    Off the main thread (where Python cannot set handlers) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(_signum: int, _frame: object) -> None:
        nonlocal raised
        if raised:
            return
        raised = True
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

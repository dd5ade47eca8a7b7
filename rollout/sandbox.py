"""Run untrusted Python (model-written code) inside a bubblewrap sandbox.

The program sees a read-only /usr, a private /proc, /dev and a small in-memory /tmp, and nothing
else of the host: no /etc, no /home, no network (all namespaces are unshared), no environment
variables. It runs Debian's /usr/bin/python3 as uid/gid 65534 with CPU, address-space, process and
file-size limits, under a wall-clock timeout, and its output is read up to a cap. A run costs
20-30 ms; no Docker or daemon is needed, only the `bubblewrap` package and root to start it.
"""

from __future__ import annotations

import os
import resource
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

SANDBOX_PYTHON = "/usr/bin/python3"
NOBODY = 65534
_INSTALL_HINT = "run `apt-get install bubblewrap python3` (make setup does this)"


class SandboxUnavailable(RuntimeError):
    """The host cannot run the sandbox; scoring code without it would be unsafe."""


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int = 2
    memory_bytes: int = 256 * 2**20
    """Address-space limit (RLIMIT_AS) of every process in the sandbox."""
    max_processes: int = 16
    """RLIMIT_NPROC, counted over all processes of uid 65534 on the host."""
    max_file_bytes: int = 2**20
    tmp_bytes: int = 16 * 2**20
    """Size of the in-memory /tmp, so many small files cannot fill the host's RAM."""
    wall_seconds: float = 5.0
    max_output_bytes: int = 16 * 2**10
    """Cap on each of stdout and stderr; the rest is read and discarded."""


@dataclass(frozen=True)
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    """Killed by the wall-clock timeout or the CPU-time limit."""
    duration_s: float


def _bwrap_argv(program_fd: int, limits: SandboxLimits) -> list[str]:
    return [
        "bwrap",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
        # After the tmpfs, or the tmpfs would hide it. Read-only, so the program cannot edit itself.
        "--ro-bind-data", str(program_fd), "/tmp/main.py",
        # bwrap's own root and /dev are unbounded tmpfs mounts: make them read-only so only the
        # size-capped /tmp can take writes (device nodes such as /dev/null still work).
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        "--unshare-all",
        # No bwrap init as PID 1: bwrap exits without reaping that init, leaving a zombie that
        # holds one of uid 65534's RLIMIT_NPROC slots until the host's init reaps it (a container
        # whose PID 1 never reaps would run out of slots). The program's exit still ends the PID
        # namespace, and with it everything it forked.
        "--as-pid-1",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--chdir", "/tmp",
        # -I: ignore PYTHON* variables and user site; -S: skip site-packages (faster, less surface).
        SANDBOX_PYTHON, "-I", "-S", "/tmp/main.py",
    ]  # fmt: skip


def _set_limits(limits: SandboxLimits) -> None:
    # Runs in the forked child after Popen dropped to uid 65534 (CPython does the drop before
    # calling preexec_fn): root ignores RLIMIT_NPROC, so it only holds once the uid is dropped.
    # Only setrlimit here: preexec_fn runs in a forked copy of a possibly threaded process.
    # Soft = hard: the kernel sends SIGKILL at the hard limit, while the SIGXCPU of a soft limit
    # is ignored by a PID 1 without a handler.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _read_capped(proc: subprocess.Popen, cap: int, deadline: float) -> tuple[bytes, bytes, bool]:
    """Read stdout and stderr until both close or the deadline passes; keep at most `cap` bytes each."""
    kept = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    with selectors.DefaultSelector() as selector:
        for pipe in kept:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(kept[proc.stdout]), bytes(kept[proc.stderr]), True
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                buf = kept[key.fileobj]
                buf += chunk[: cap - len(buf)]
    return bytes(kept[proc.stdout]), bytes(kept[proc.stderr]), False


def _kill(proc: subprocess.Popen) -> None:
    """Kill the program, PID 1 of its namespace, which takes everything it forked along.

    Not bwrap: bwrap must live to reap the program, or the program becomes a zombie orphan.
    """
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(pid) for pid in f.read().split()]
    except FileNotFoundError:  # bwrap already exited
        children = []
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended meanwhile
            pass
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:  # still setting up the sandbox: kill bwrap itself
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_python(source: str, limits: SandboxLimits) -> SandboxResult:
    """Run `source` as a Python program in the sandbox and return its exit status and output."""
    start = time.monotonic()
    deadline = start + limits.wall_seconds
    with tempfile.TemporaryFile() as program:
        program.write(source.encode(errors="replace"))  # a lone surrogate becomes a syntax error
        program.seek(0)
        try:
            proc = subprocess.Popen(
                _bwrap_argv(program.fileno(), limits),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=[program.fileno()],
                user=NOBODY,
                group=NOBODY,
                extra_groups=[],
                preexec_fn=lambda: _set_limits(limits),
                start_new_session=True,  # so the fallback in _kill can signal bwrap's group
            )
        except FileNotFoundError as e:
            raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {_INSTALL_HINT}") from e
        except PermissionError as e:
            raise SandboxUnavailable(f"the sandbox must start as root to drop to uid {NOBODY}: {e}") from e
        with proc:
            stdout, stderr, timed_out = _read_capped(proc, limits.max_output_bytes, deadline)
            if not timed_out:
                try:
                    # The program may close its output and keep running.
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
            if timed_out:
                _kill(proc)
    # bwrap reports a program killed by signal N as 128 + N; SIGKILL comes from the CPU limit.
    timed_out = timed_out or proc.returncode == 128 + signal.SIGKILL
    return SandboxResult(
        returncode=proc.returncode,
        stdout=stdout.decode(errors="replace"),
        stderr=stderr.decode(errors="replace"),
        timed_out=timed_out,
        duration_s=time.monotonic() - start,
    )


def check_sandbox() -> None:
    """Raise SandboxUnavailable with what to do unless a trivial program runs in the sandbox."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {_INSTALL_HINT}")
    if not os.path.exists(SANDBOX_PYTHON):
        raise SandboxUnavailable(f"the sandbox runs {SANDBOX_PYTHON}, which is missing: {_INSTALL_HINT}")
    result = run_python("print(6 * 7)", SandboxLimits())
    if result.returncode != 0 or result.stdout.strip() != "42":
        reason = f"exit {result.returncode}: {result.stderr.strip()[:500]}"
        raise SandboxUnavailable(f"bubblewrap (bwrap) cannot start a trivial program ({reason})")

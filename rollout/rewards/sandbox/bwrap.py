"""Run untrusted Python (model-written code) inside a bubblewrap sandbox.

The program sees a read-only /usr, a private /proc, /dev and a small in-memory /tmp, and nothing
else of the host: no /etc, no /home, no network (all namespaces are unshared), no environment
variables. It runs Debian's /usr/bin/python3 under an unprivileged uid/gid of its own (one of
SANDBOX_UIDS, a different one for each run at the same time) with CPU, address-space, process and
file-size limits and a seccomp filter (`seccomp.py`), under a wall-clock timeout, and its
output is read up to a cap. A run costs 20-30 ms; no Docker or daemon is needed, only the
`bubblewrap` package and root to start it. The limits are the code domain's config section
(`SandboxConfig`, `domains.<name>.reward.sandbox`), whose defaults are declared there once.
"""

from __future__ import annotations

import fcntl
import os
import random
import resource
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from counterpoint.rollout.config import SandboxConfig

SANDBOX_PYTHON = "/usr/bin/python3"
NOBODY = 65534
SANDBOX_UIDS = range(65100, 65132)
"""Unprivileged uids (and gids) without an account, one per concurrent run. RLIMIT_NPROC counts
the processes of a uid across the whole host, so runs side by side under one uid would share it
and a fork bomb in one would make its neighbours fail. A run claims a free uid with a lock file,
which works across the reward worker processes of a host."""
# Fixed, not from TMPDIR: every process on the host must see the same locks.
_UID_LOCK_DIR = Path("/tmp/counterpoint-sandbox-uids")
_INSTALL_HINT = "run `apt-get install bubblewrap python3` (make setup does this)"


class SandboxUnavailable(RuntimeError):
    """The host cannot run the sandbox; scoring code without it would be unsafe."""


@dataclass(frozen=True)
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    """Killed by the wall-clock timeout or the CPU-time limit."""
    duration_s: float


def _bwrap_argv(
    file_fds: dict[str, int], limits: SandboxConfig, args: Sequence[str], seccomp_fd: int | None = None
) -> list[str]:
    """`file_fds` maps paths under /tmp (the program at /tmp/main.py first) to descriptors of their
    contents; `seccomp_fd` reads the compiled system call filter."""
    # After the tmpfs, or the tmpfs would hide them. Read-only, so the program cannot edit itself.
    files = [arg for path, fd in file_fds.items() for arg in ("--ro-bind-data", str(fd), path)]
    return [
        "bwrap",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
        *files,
        # bwrap's own root and /dev are unbounded tmpfs mounts: make them read-only so only the
        # size-capped /tmp can take writes (device nodes such as /dev/null still work).
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        "--unshare-all",
        # No user namespaces inside: one would give the program every capability over a nested
        # namespace (mounts, new network namespaces), kernel surface it has no use for.
        "--unshare-user",
        "--disable-userns",
        # No bwrap init as PID 1: bwrap exits without reaping that init, leaving a zombie that
        # holds one of the uid's RLIMIT_NPROC slots until the host's init reaps it (a container
        # whose PID 1 never reaps would run out of slots). The program's exit still ends the PID
        # namespace, and with it everything it forked.
        "--as-pid-1",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
        "--chdir", "/tmp",
        # -I: ignore PYTHON* variables and user site; -S: skip site-packages (faster, less surface).
        SANDBOX_PYTHON, "-I", "-S", "/tmp/main.py", *args,
    ]  # fmt: skip


def _set_limits(limits: SandboxConfig) -> None:
    # Runs in the forked child after Popen dropped to the sandbox uid (CPython does the drop before
    # calling preexec_fn): root ignores RLIMIT_NPROC, so it only holds once the uid is dropped.
    # Only setrlimit here: preexec_fn runs in a forked copy of a possibly threaded process.
    # Soft = hard: the kernel sends SIGKILL at the hard limit, while the SIGXCPU of a soft limit
    # is ignored by a PID 1 without a handler.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@contextmanager
def _claim_uid():
    """A uid from SANDBOX_UIDS that no other run on this host holds, held until the block ends."""
    _UID_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    start = random.randrange(len(SANDBOX_UIDS))
    order = [SANDBOX_UIDS[(start + i) % len(SANDBOX_UIDS)] for i in range(len(SANDBOX_UIDS))]
    for i, uid in enumerate(order):
        fd = os.open(_UID_LOCK_DIR / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Non-blocking while there are others to try; the last one is waited for.
            fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if i < len(order) - 1 else 0))
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)  # releases the lock
        return


def _uid_in_use(uid: int) -> bool:
    """Whether a run holds `uid` now (its lock file is locked)."""
    try:
        fd = os.open(_UID_LOCK_DIR / str(uid), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def leftover_processes() -> list[tuple[int, int, str]]:
    """(pid, uid, command line) of live processes under a sandbox uid that no run holds: whatever a
    finished run left behind (the kernel takes a moment to tear a sandbox down, so poll)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            if uid not in SANDBOX_UIDS or _uid_in_use(uid):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found.append((int(pid), uid, f.read().replace(b"\0", b" ").decode(errors="replace")))
        except OSError:  # it ended while we looked
            continue
    return found


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


@lru_cache(maxsize=1)
def _seccomp_program() -> bytes:
    from counterpoint.rollout.rewards.sandbox.seccomp import SeccompUnsupported, seccomp_program

    try:
        return seccomp_program()
    except SeccompUnsupported as e:
        raise SandboxUnavailable(
            f"{e}; set domains.<name>.reward.sandbox.seccomp=false for the code domain to "
            "run code without the system call filter (the namespaces, uid and limits still "
            "apply)"
        ) from e


def run_python(
    source: str,
    limits: SandboxConfig,
    *,
    args: Sequence[str] = (),
    files: Mapping[str, str | bytes] | None = None,
    stdin: bytes = b"",
) -> SandboxResult:
    """Run `source` as a Python program in the sandbox and return its exit status and output.

    `args` are its command-line arguments, `files` extra read-only files (path under /tmp → text
    or bytes) and `stdin` what it reads on standard input.
    """
    start = time.monotonic()
    deadline = start + limits.wall_seconds
    contents = {"/tmp/main.py": source, **(files or {})}
    with ExitStack() as stack:
        uid = stack.enter_context(_claim_uid())
        fds = {}
        for path, text in contents.items():
            if not path.startswith("/tmp/") or path.count("/") != 2:
                raise ValueError(f"sandbox files go directly under /tmp, not {path!r}")
            f = stack.enter_context(tempfile.TemporaryFile())
            # A lone surrogate in model output becomes a syntax error, not an exception here.
            f.write(text if isinstance(text, bytes) else text.encode(errors="replace"))
            f.seek(0)
            fds[path] = f.fileno()
        stdin_file = stack.enter_context(tempfile.TemporaryFile())
        stdin_file.write(stdin)
        stdin_file.seek(0)
        seccomp_fd = None
        if limits.seccomp:
            f = stack.enter_context(tempfile.TemporaryFile())
            f.write(_seccomp_program())
            f.seek(0)
            seccomp_fd = f.fileno()
        try:
            proc = subprocess.Popen(
                _bwrap_argv(fds, limits, args, seccomp_fd),
                stdin=stdin_file,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=list(fds.values()) + ([seccomp_fd] if seccomp_fd is not None else []),
                user=uid,
                group=uid,
                extra_groups=[],
                preexec_fn=lambda: _set_limits(limits),
                start_new_session=True,  # so the fallback in _kill can signal bwrap's group
            )
        except FileNotFoundError as e:
            raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {_INSTALL_HINT}") from e
        except PermissionError as e:
            raise SandboxUnavailable(f"the sandbox must start as root to drop to uid {uid}: {e}") from e
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


def check_sandbox(limits: SandboxConfig | None = None) -> None:
    """Raise SandboxUnavailable with what to do unless a trivial program runs in the sandbox under
    `limits` (a domain's own, so a filter turned off there is off here too; None: the defaults)."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {_INSTALL_HINT}")
    if not os.path.exists(SANDBOX_PYTHON):
        raise SandboxUnavailable(f"the sandbox runs {SANDBOX_PYTHON}, which is missing: {_INSTALL_HINT}")
    result = run_python("print(6 * 7)", limits or SandboxConfig())
    if result.returncode != 0 or result.stdout.strip() != "42":
        reason = f"exit {result.returncode}: {result.stderr.strip()[:500]}"
        raise SandboxUnavailable(f"bubblewrap (bwrap) cannot start a trivial program ({reason})")

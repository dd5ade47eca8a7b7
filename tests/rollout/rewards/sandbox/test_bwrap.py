"""The bubblewrap sandbox contains what model-written code might do. Needs bwrap (make setup installs
it); a missing sandbox is a failure here, not a skip."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from counterpoint.rollout.config import SandboxConfig
from counterpoint.rollout.rewards.sandbox import bwrap
from counterpoint.rollout.rewards.sandbox.bwrap import (
    SandboxUnavailable,
    check_sandbox,
    leftover_processes,
    run_python,
)

# The wall clock is well above the CPU limit: on a loaded 2-core host a second of CPU time can
# take a few seconds, and a test of the CPU limit must not be ended by the wall clock instead.
FAST = SandboxConfig(cpu_seconds=1, wall_seconds=4.0)


def _sandbox_processes() -> list[str]:
    """Command lines of processes a finished sandbox run left behind (runs of other jobs on the
    host hold their uid's lock and are not counted)."""
    deadline = time.monotonic() + 2.0
    while leftover_processes() and time.monotonic() < deadline:
        time.sleep(0.02)  # the kernel tears a namespace down asynchronously
    return [cmdline for _, _, cmdline in leftover_processes()]


def test_check_sandbox_passes():
    check_sandbox()


def test_check_sandbox_says_how_to_install_when_bwrap_missing(monkeypatch):
    monkeypatch.setattr(bwrap.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        check_sandbox()


def test_correct_program_runs_and_returns_output():
    result = run_python("import sys\nprint(sum(range(10)))\nprint('oops', file=sys.stderr)", FAST)
    assert (result.returncode, result.stdout, result.stderr, result.timed_out) == (0, "45\n", "oops\n", False)
    assert result.duration_s < FAST.wall_seconds


def test_failing_program_reports_exit_status():
    result = run_python("raise SystemExit(3)", FAST)
    assert result.returncode == 3 and not result.timed_out


def test_busy_loop_is_stopped_by_the_cpu_limit():
    result = run_python("while True: pass", FAST)
    assert result.timed_out and result.returncode != 0
    assert result.duration_s < FAST.wall_seconds + 1.0


def test_sleeping_program_is_stopped_by_the_wall_clock():
    # 2 s: time for bubblewrap and Python to start on a loaded machine, far below the 60 s sleep
    limits = SandboxConfig(cpu_seconds=1, wall_seconds=2.0)
    result = run_python("import time\nprint('started', flush=True)\ntime.sleep(60)", limits)
    assert result.timed_out and result.stdout == "started\n"
    assert result.duration_s < limits.wall_seconds + 1.0


def test_memory_bomb_fails():
    result = run_python("x = bytearray(4 << 30)\nprint('allocated')", FAST)
    assert result.returncode != 0 and "MemoryError" in result.stderr and "allocated" not in result.stdout


def test_fork_bomb_is_contained_and_cleaned_up():
    source = """
import os, time
forks = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        forks += 1
except OSError as e:
    print(forks, type(e).__name__)
"""
    result = run_python(source, FAST)
    forks, error = result.stdout.split()
    assert int(forks) < FAST.max_processes and error == "BlockingIOError"
    # The sleeping children die with the sandbox's PID namespace instead of outliving the run.
    assert not result.timed_out and result.duration_s < FAST.wall_seconds
    assert _sandbox_processes() == []


def test_runs_leave_no_zombies_holding_process_slots():
    # bwrap's default init used to be left as a zombie per run until the host's init reaped it;
    # twenty quick runs then hit RLIMIT_NPROC ("bwrap: Can't fork for pid 1").
    for _ in range(20):
        assert run_python("print('ok')", FAST).stdout == "ok\n"


def test_writes_go_only_to_a_small_tmp():
    source = """
for path in ["/usr/evil", "/evil", "/dev/evil", "/dev/shm/evil", "/proc/evil", "/tmp/main.py"]:
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError:
        pass
open("/tmp/ok", "w").write("fine")
print(open("/tmp/ok").read())
try:
    open("/tmp/big", "wb").write(b"x" * (2 << 20))
except OSError as e:
    print(e.strerror)
"""
    result = run_python(source, FAST)
    assert result.stdout.split("\n")[:2] == ["fine", "File too large"], result.stderr


def test_network_to_host_loopback_is_refused():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        source = f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1)
    print("connected")
except OSError as e:  # refused, or unreachable: the sandbox has only its own loopback
    print(type(e).__name__)
"""
        result = run_python(source, FAST)
        assert result.stdout.strip() in {"ConnectionRefusedError", "OSError"}
        with pytest.raises(TimeoutError):
            listener.accept()


def test_host_files_are_not_visible():
    source = """
import os
print(os.path.exists("/etc/shadow"), os.path.exists("/root"), os.getuid())
open("/etc/shadow")
"""
    result = run_python(source, FAST)
    exists_shadow, exists_root, uid = result.stdout.split()
    assert (exists_shadow, exists_root) == ("False", "False") and int(uid) in bwrap.SANDBOX_UIDS
    assert "FileNotFoundError" in result.stderr


def test_host_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("COUNTERPOINT_TEST_SECRET", "hunter2")
    result = run_python("import os\nprint(dict(os.environ))", FAST)
    assert result.returncode == 0
    assert "hunter2" not in result.stdout and "COUNTERPOINT" not in result.stdout


def test_huge_output_is_capped():
    source = "import sys\nsys.stdout.write('x' * 5_000_000)\nsys.stderr.write('y' * 5_000_000)"
    result = run_python(source, FAST)
    assert result.returncode == 0
    assert result.stdout == "x" * FAST.max_output_bytes and result.stderr == "y" * FAST.max_output_bytes


def test_no_sandbox_process_outlives_a_timeout():
    run_python("import os, time\nos.fork()\ntime.sleep(60)", SandboxConfig(cpu_seconds=1, wall_seconds=0.3))
    assert _sandbox_processes() == []


def test_arguments_extra_files_and_stdin_reach_the_program():
    source = "import sys\nprint(sys.argv[1:], open('/tmp/data.txt').read(), sys.stdin.read())"
    result = run_python(source, FAST, args=["a", "b"], files={"/tmp/data.txt": "hello"}, stdin=b"piped")
    assert result.stdout == "['a', 'b'] hello piped\n", result.stderr
    edit = run_python("open('/tmp/data.txt', 'w').write('x')", FAST, files={"/tmp/data.txt": "hello"})
    assert "Read-only file system" in edit.stderr or "Permission denied" in edit.stderr
    with pytest.raises(ValueError, match="directly under /tmp"):
        run_python("pass", FAST, files={"/etc/passwd": "x"})


def test_no_nested_user_namespaces():
    source = "import ctypes\nprint(ctypes.CDLL(None, use_errno=True).unshare(0x10000000))"  # CLONE_NEWUSER
    assert run_python(source, FAST).stdout == "-1\n"


def test_a_fork_bomb_does_not_starve_a_run_beside_it():
    # RLIMIT_NPROC counts per uid over the host: runs at the same time get different uids.
    bomb = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.05)"
    honest = "import os, time\ntime.sleep(0.3)\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nprint('forked')"  # noqa: E501
    with ThreadPoolExecutor(max_workers=2) as pool:
        bombed = pool.submit(run_python, bomb, SandboxConfig(cpu_seconds=1, wall_seconds=1.5))
        time.sleep(0.2)  # let the bomb fill its process slots first
        beside = pool.submit(run_python, honest, FAST)
        assert beside.result().stdout == "forked\n", beside.result().stderr
        assert bombed.result().timed_out
    assert _sandbox_processes() == []

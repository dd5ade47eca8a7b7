"""Hostile model output, scored by the code domain: each case must be contained, leave the host as
it was, and come back as a failed sample with its reason.

Every case is the body of `f(x)`, whose tests want x + 3, written so that it returns x + 3 only if
its attack worked: a passing sample would mean an escape. After each case the host is checked:
sentinel files in the repository and in the host's /tmp unchanged, no process left behind under a
sandbox uid, a host process of another unprivileged uid still alive, the host's secret env var
never seen. Needs bwrap, as the rest of the sandbox tests do.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from counterpoint.rollout.config import CodeReward, SandboxConfig
from counterpoint.rollout.records import Prompt
from counterpoint.rollout.rewards.code_check import io_tests
from counterpoint.rollout.rewards.sandbox.bwrap import NOBODY, leftover_processes
from counterpoint.rollout.tasks.code import CodeDomain

# A call may take 1.5 s (CPU limit + 0.5 s), the whole run 5 s: room for a loaded host.
DOMAIN = CodeDomain(CodeReward(sandbox=SandboxConfig(cpu_seconds=1, wall_seconds=5.0)))
PROMPT = Prompt(
    "code", "code/adversarial/0", "def f(x):\n", {"entry": "f", "tests": [[[3], 6], [[0], 3], [[1], 4], [[5], 8]]}
)
REPO_FILE = Path(__file__).resolve()
SECRET = "hunter2-counterpoint-secret"
# How the last test case appears in the harness's input: found anywhere, the tests leaked.
TESTS_JSON = json.dumps(io_tests(PROMPT.reference["tests"])["cases"][-1])
TIMEOUT, CRASH, EXCEPTION, WRONG = {"timeout"}, {"crash"}, {"exception"}, {"wrong_answer"}
MEMORY = {"memory_limit"}

# name → (body of f, the failure categories that count as contained, a word the reason must hold)
CASES = {
    "infinite loop": ("    while True:\n        pass", TIMEOUT, ""),
    "sleeps forever": ("    import time\n    time.sleep(600)\n    return x + 3", TIMEOUT, ""),
    "stops itself": ("    import os, signal\n    os.kill(os.getpid(), signal.SIGSTOP)\n    return x + 3", TIMEOUT, ""),
    "fork bomb": ("    import os\n    while True:\n        os.fork()", EXCEPTION | CRASH | TIMEOUT, ""),
    "thread bomb": (
        "    import threading, time\n    for _ in range(200):\n"
        "        threading.Thread(target=time.sleep, args=(60,)).start()\n    return x + 3",
        EXCEPTION,
        "thread",
    ),
    "memory bomb": ("    block = bytearray(4 << 30)\n    return x + 3", MEMORY, "MemoryError"),
    # Slow work: on a loaded machine these may reach the time limit before the memory limit.
    "memory growth": (
        "    hoard = []\n    while True:\n        hoard.append(bytearray(1 << 20))",
        MEMORY | CRASH | TIMEOUT,
        "",
    ),
    "huge output": ("    import os\n    while True:\n        os.write(1, b'x' * 65536)", TIMEOUT, ""),
    "huge return value": ("    return 'x' * (100 << 20)", {"result_too_large"} | MEMORY | CRASH | TIMEOUT, ""),
    "huge exception message": ("    raise ValueError('x' * (10 << 20))", EXCEPTION, "ValueError"),
    "write into /usr": ("    open('/usr/pwned', 'w').write('x')\n    return x + 3", EXCEPTION, "Read-only"),
    "write into /": ("    open('/pwned', 'w').write('x')\n    return x + 3", EXCEPTION, "Read-only"),
    "rewrite the candidate file": ("    open('/tmp/candidate.py', 'w').write('x')\n    return x + 3", EXCEPTION, ""),
    "write the host's /tmp sentinel": (
        "    open({tmp_sentinel!r}, 'w').write('x')\n    return x + 3",
        EXCEPTION,
        "FileNotFound",
    ),
    "fill /tmp": (
        "    for i in range(100):\n        open(f'/tmp/fill{{i}}', 'wb').write(b'x' * (1 << 20))\n    return x + 3",
        EXCEPTION,
        "",
    ),
    "write a big file": (
        "    open('/tmp/big', 'wb').write(b'x' * (8 << 20))\n    return x + 3",
        EXCEPTION,
        "too large",
    ),
    "read /etc/shadow": ("    open('/etc/shadow').read()\n    return x + 3", EXCEPTION, "FileNotFound"),
    "read the repository": ("    open({repo_file!r}).read()\n    return x + 3", EXCEPTION, "FileNotFound"),
    "list root's home": ("    import os\n    os.listdir('/root')\n    return x + 3", EXCEPTION, "FileNotFound"),
    "secret in environment": ("    import os\n    return x + 3 if {secret!r} in str(os.environ) else None", WRONG, ""),
    "secret in /proc environ": (
        "    import os\n    found = ''\n    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "        try:\n            found += open(f'/proc/{{pid}}/environ').read()\n"
        "        except OSError:\n            pass\n    return x + 3 if {secret!r} in found else None",
        WRONG,
        "",
    ),
    "steal the tests from the harness's stdin": (
        "    open('/proc/1/fd/0').read()\n    return x + 3",
        EXCEPTION,
        "Permission",
    ),
    "read the harness's memory": ("    open('/proc/1/mem', 'rb')\n    return x + 3", EXCEPTION, "Permission"),
    "search files for the tests": (
        "    import os\n    text = ''\n    paths = [os.path.join('/tmp', n) for n in os.listdir('/tmp')]\n"
        "    for path in paths + ['/proc/1/cmdline', '/proc/1/environ', '/proc/self/environ', '/proc/self/fd/0']:\n"
        "        try:\n            text += open(path, errors='replace').read()\n"
        "        except OSError:\n            pass\n    marker = {tests_head!r} + {tests_tail!r}  # not in this source as one piece\n"  # noqa: E501
        "    return x + 3 if marker in text else None",
        WRONG,
        "",
    ),
    "network to the host's loopback": (
        "    import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n    return x + 3",
        EXCEPTION,
        "refused",
    ),
    # A UDP connect sends nothing, so even a broken sandbox sends no packet out; it only fails
    # when there is no route, as in a namespace with nothing but its own loopback.
    "network outside": (
        "    import socket\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    s.connect(('192.0.2.1', 53))\n    return x + 3",
        EXCEPTION,
        "unreachable",
    ),
    "network interfaces": (
        "    import socket\n    return x + 3 if len(socket.if_nameindex()) > 1 else None",
        WRONG,
        "",
    ),
    "subprocess shell": (
        "    import subprocess\n    subprocess.run(['/bin/sh', '-c', 'cat /etc/shadow'], check=True, capture_output=True)\n"  # noqa: E501
        "    return x + 3",
        EXCEPTION,
        "CalledProcessError",
    ),
    "subprocess left running": (
        "    import subprocess\n    subprocess.Popen(['sleep', '60'], start_new_session=True)\n    return None",
        WRONG,
        "",
    ),
    "delete /usr": ("    import shutil\n    shutil.rmtree('/usr/lib/python3')\n    return x + 3", EXCEPTION, ""),
    "delete the host's /tmp sentinel": (
        "    import os\n    os.remove({tmp_sentinel!r})\n    return x + 3",
        EXCEPTION,
        "FileNotFound",
    ),
    "kill the harness": (
        "    import os, time\n    os.kill(os.getppid(), 9)\n    time.sleep(0.1)\n    try:\n"
        "        os.kill(os.getppid(), 0)\n    except ProcessLookupError:\n        return x + 3",
        WRONG,
        "",
    ),
    # Linux spares the caller and a namespace's PID 1; the bystander outside must survive too.
    "kill everything": ("    import os\n    os.kill(-1, 9)\n    return None", WRONG | EXCEPTION, ""),
    # Python frames live on the heap in 3.11; recursion in C (repr of a deep list) is what
    # overflows the stack once the recursion limit is lifted.
    "recursion crash": (
        "    import sys\n    sys.setrecursionlimit(10 ** 7)\n    deep = []\n    for _ in range(300_000):\n"
        "        deep = [deep]\n    return len(repr(deep)) + x + 3",
        CRASH | TIMEOUT,
        "",
    ),
    "runaway recursion": (
        "    import sys\n    sys.setrecursionlimit(10 ** 7)\n    def down(n):\n        return down(n + 1)\n    return down(0)",  # noqa: E501
        TIMEOUT | CRASH | EXCEPTION,
        "",
    ),
    "ctypes null read": ("    import ctypes\n    ctypes.string_at(0)\n    return x + 3", CRASH, "SIGSEGV"),
    "ctypes setuid 0": ("    import ctypes\n    return x + 3 if ctypes.CDLL(None).setuid(0) == 0 else None", WRONG, ""),
    "ctypes ptrace the harness": (
        "    import ctypes\n    return x + 3 if ctypes.CDLL(None).ptrace(16, 1, 0, 0) == 0 else None",  # PTRACE_ATTACH
        WRONG,
        "",
    ),
    "ctypes mount": (
        "    import ctypes\n    ok = ctypes.CDLL(None).mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0\n"
        "    return x + 3 if ok else None",
        WRONG,
        "",
    ),
    # kernel surface that namespaces and the uid leave reachable: the seccomp filter refuses it
    "ctypes kernel keyring": (
        "    import ctypes\n    return x + 3 if ctypes.CDLL(None).syscall(250, 0, -3, 0) >= 0 else None",  # keyctl
        WRONG,
        "",
    ),
    "ctypes userfaultfd": (
        "    import ctypes\n    return x + 3 if ctypes.CDLL(None).syscall(323, 1) >= 0 else None",
        WRONG,
        "",
    ),
    "ctypes io_uring": (
        "    import ctypes\n    params = ctypes.create_string_buffer(120)\n"
        "    return x + 3 if ctypes.CDLL(None).syscall(425, 1, params) >= 0 else None",  # io_uring_setup
        WRONG,
        "",
    ),
    "ctypes bpf": (
        "    import ctypes\n    return x + 3 if ctypes.CDLL(None).syscall(321, 0, 0, 0) >= 0 else None",
        WRONG,
        "",
    ),
    "system call through the x32 ABI": (
        "    import ctypes\n    ctypes.CDLL(None).syscall(0x40000000 | 101, 16, 1, 0, 0)\n    return x + 3",
        CRASH,
        "SIGSYS",
    ),
    "setuid root": ("    import os\n    os.setuid(0)\n    return x + 3", EXCEPTION, "OSError"),
    "print a fake verdict": ("    import os\n    os.write(1, b'[\"done\", 4, 4]\\n')\n    return None", WRONG, ""),
    "patch the comparison": (
        "    import builtins, json\n    builtins.type = lambda *a: int\n    json.dumps = lambda *a, **k: '[true]'\n"
        "    return None",
        CRASH,
        "garbled",
    ),
    "object equal to anything": (
        "    return type('A', (), {{'__eq__': lambda s, o: True}})()",
        {"unsupported_result"},
        "",
    ),
    "exit early with success": ("    import os\n    os._exit(0)", CRASH, "status 0"),
    "close every descriptor": ("    import os\n    os.closerange(0, 256)\n    return x + 3", CRASH, ""),
}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """What the cases aim at on the host: a /tmp sentinel, a listener, a process of another uid."""
    sentinel = tmp_path_factory.mktemp("adversarial") / "sentinel"
    sentinel.write_text("untouched")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.01)
    # Another unprivileged process: "kill everything" must not reach it.
    bystander = subprocess.Popen(["sleep", "600"], user=NOBODY, group=NOBODY, extra_groups=[])
    yield {
        "tmp_sentinel": str(sentinel),
        "port": listener.getsockname()[1],
        "listener": listener,
        "bystander": bystander,
    }
    bystander.kill()
    bystander.wait()
    listener.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_code_is_contained_and_fails_with_a_reason(name, host, monkeypatch):
    monkeypatch.setenv("COUNTERPOINT_SECRET", SECRET)
    body, contained, reason_word = CASES[name]
    body = body.format(
        tmp_sentinel=host["tmp_sentinel"],
        repo_file=str(REPO_FILE),
        secret=SECRET,
        port=host["port"],
        tests_head=TESTS_JSON[:5],
        tests_tail=TESTS_JSON[5:],
    )
    repo_before = _digest(REPO_FILE)

    [score] = DOMAIN.score_group(PROMPT, [body + "\n"])

    assert (score.reward, score.correct) == (0.0, False), score
    assert score.info["error"] in contained, score.info
    assert reason_word in score.info["detail"] + " ".join(score.info["tests"]), score.info
    assert len(score.info["tests"]) == 4 and "pass" not in score.info["tests"]
    # The host is as it was.
    assert Path(host["tmp_sentinel"]).read_text() == "untouched"
    assert _digest(REPO_FILE) == repo_before
    assert not Path("/pwned").exists() and not Path("/usr/pwned").exists()
    assert host["bystander"].poll() is None, "a process outside the sandbox was killed"
    with pytest.raises(TimeoutError):  # nothing reached the host's listener
        host["listener"].accept()
    deadline = time.monotonic() + 2.0
    while leftover_processes() and time.monotonic() < deadline:
        time.sleep(0.02)  # the kernel tears a sandbox down asynchronously
    assert leftover_processes() == []


def test_the_suite_covers_at_least_25_attacks():
    assert len(CASES) >= 25

"""The sandbox's system call filter: the BPF program evaluated here by a small interpreter, then
loaded by bubblewrap for real."""

import errno
import re
import struct
from pathlib import Path

import pytest

from counterpoint.rollout.config import SandboxConfig
from counterpoint.rollout.rewards.sandbox.bwrap import run_python
from counterpoint.rollout.rewards.sandbox.seccomp import (
    AUDIT_ARCH_AARCH64,
    AUDIT_ARCH_X86_64,
    DENIED_AARCH64,
    DENIED_X86_64,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS,
    SeccompUnsupported,
    seccomp_program,
)

AUDIT_ARCH_I386 = 0x40000003


def run_bpf(program: bytes, nr: int, arch: int) -> int:
    """Evaluate a classic BPF seccomp program on struct seccomp_data {nr, arch} (the opcodes the
    filter uses: ld abs, jeq/jge k, ret k)."""
    data = struct.pack("=iI", nr, arch) + bytes(56)
    insns = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack_from("=I", data, k)[0]
        elif code in (0x15, 0x35):
            taken = acc == k if code == 0x15 else acc >= k
            pc += jt if taken else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


@pytest.mark.parametrize(
    "machine, arch, table, harmless",
    [
        # read write open close mmap clone fork execve exit exit_group / read write close mmap clone execve exit
        ("x86_64", AUDIT_ARCH_X86_64, DENIED_X86_64, {0, 1, 2, 3, 9, 56, 57, 59, 60, 231}),
        ("aarch64", AUDIT_ARCH_AARCH64, DENIED_AARCH64, {63, 64, 57, 222, 220, 221, 93, 94}),
    ],
)
def test_the_filter_denies_exactly_its_table(machine, arch, table, harmless):
    program = seccomp_program(machine)
    denied = set(table.values())
    for nr in range(0, 460):
        expected = SECCOMP_RET_ERRNO | errno.EPERM if nr in denied else SECCOMP_RET_ALLOW
        assert run_bpf(program, nr, arch) == expected, nr
    assert {table[n] for n in ("ptrace", "mount", "unshare", "keyctl", "bpf", "io_uring_setup")} <= denied
    assert harmless & denied == set()


@pytest.mark.parametrize(
    "header, table",
    [
        ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", DENIED_X86_64),
        ("/usr/include/asm-generic/unistd.h", DENIED_AARCH64),
    ],
)
def test_the_tables_match_the_kernel_headers(header, table):
    if not Path(header).exists():
        pytest.skip(f"{header} not installed (Debian linux-libc-dev)")
    numbers = dict(re.findall(r"#define __NR_(\w+)\s+(\d+)\s*$", Path(header).read_text(), re.MULTILINE))
    assert {name: str(nr) for name, nr in table.items()} == {name: numbers.get(name) for name in table}


def test_other_abis_are_killed_not_looked_up():
    program = seccomp_program("x86_64")
    assert run_bpf(program, 39, AUDIT_ARCH_I386) == SECCOMP_RET_KILL_PROCESS  # int 0x80
    assert run_bpf(program, 0x40000000 | 101, AUDIT_ARCH_X86_64) == SECCOMP_RET_KILL_PROCESS  # x32 ptrace
    assert run_bpf(program, 117, AUDIT_ARCH_AARCH64) == SECCOMP_RET_KILL_PROCESS  # an x86_64 filter on arm
    assert run_bpf(seccomp_program("aarch64"), 26, 0x40000028) == SECCOMP_RET_KILL_PROCESS  # AArch32 (ARM EABI)


def test_other_machines_are_refused():
    with pytest.raises(SeccompUnsupported, match="riscv64.*aarch64, x86_64"):
        seccomp_program(machine="riscv64")


PROBE = r"""
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
status = [l.split(":")[1].strip() for l in open("/proc/self/status") if l.startswith("Seccomp:")]
calls = {"keyctl": (250, 0, -3, 0), "userfaultfd": (323, 1), "kcmp": (312, 1, 1, 0, 0, 0), "getpid": (39,)}
results = []
for name, (nr, *args) in calls.items():
    ctypes.set_errno(0)
    r = libc.syscall(nr, *args)
    results.append(f"{name}={'EPERM' if r == -1 and ctypes.get_errno() == errno.EPERM else 'ran'}")
print(status[0], *results)
"""


def test_bubblewrap_loads_the_filter():
    result = run_python(PROBE, SandboxConfig())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "keyctl=EPERM", "userfaultfd=EPERM", "kcmp=EPERM", "getpid=ran"]


def test_without_the_filter_those_calls_reach_the_kernel():
    # the same program with seccomp off: these calls work in the sandbox, so the filter is
    # what stops them above (this kernel allows unprivileged keyrings, user-mode userfaultfd, kcmp)
    result = run_python(PROBE, SandboxConfig(seccomp=False))
    assert result.returncode == 0, result.stderr
    fields = result.stdout.split()
    assert fields[0] == "0" and "getpid=ran" in fields
    assert any(f.endswith("=ran") for f in fields[1:4]), fields


def test_a_call_through_another_abi_kills_the_program():
    result = run_python("import ctypes\nctypes.CDLL(None).syscall(0x40000000 | 39)\nprint('survived')", SandboxConfig())
    assert result.returncode == 128 + 31 and "survived" not in result.stdout  # SIGSYS

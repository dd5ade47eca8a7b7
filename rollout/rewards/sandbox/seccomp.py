"""A seccomp filter for the code sandbox, assembled here as classic BPF (no libseccomp needed).

bubblewrap loads it (`--seccomp FD`) right before it executes the sandboxed Python, after its own
mounts, so only the model's program and what it starts run under it. The other layers (namespaces,
a uid of its own, rlimits, a read-only filesystem) already deny most of what follows; the filter
takes the kernel surface itself away: a denied system call fails with EPERM before any kernel
code behind it runs, the way Docker's and Podman's default profiles work.

Denied: debugging and reading other processes (ptrace, process_vm_*, kcmp, pidfd_getfd), mounts
and namespaces (mount, the new mount API, pivot_root, chroot, unshare, setns), the kernel keyring,
BPF, perf events, userfaultfd, io_uring, file handles, kernel modules, kexec, reboot, swap,
syslog, accounting, quotas, clock setting, page migration, fanotify, I/O port access and LDT
changes. Every other call is allowed. A call from another ABI (32-bit int 0x80 or AArch32, x32)
kills the process, so the table cannot be bypassed by a different system call numbering.

Tables for x86_64 and aarch64 (checked against the kernel's headers by
tests/rollout/rewards/sandbox/test_seccomp.py where linux-libc-dev is installed; run on x86_64
only). On another machine `seccomp_program()` raises, and the sandbox refuses to run code unless
the code domain's `reward.sandbox.seccomp` is off (with the other layers still in place).
"""

from __future__ import annotations

import errno
import platform
import struct

# x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl)
DENIED_X86_64: dict[str, int] = {
    "ptrace": 101, "syslog": 103, "uselib": 134, "ustat": 136, "sysfs": 139, "vhangup": 153,
    "modify_ldt": 154, "pivot_root": 155, "_sysctl": 156, "adjtimex": 159, "chroot": 161,
    "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168,
    "reboot": 169, "iopl": 172, "ioperm": 173, "create_module": 174, "init_module": 175,
    "delete_module": 176, "get_kernel_syms": 177, "query_module": 178, "quotactl": 179,
    "nfsservctl": 180, "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246,
    "add_key": 248, "request_key": 249, "keyctl": 250, "migrate_pages": 256, "unshare": 272,
    "move_pages": 279, "perf_event_open": 298, "fanotify_init": 300, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320, "bpf": 321,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "pidfd_getfd": 438, "mount_setattr": 442,
}  # fmt: skip

# aarch64 uses the generic numbering (include/uapi/asm-generic/unistd.h); the x86-only legacy
# calls above do not exist there
DENIED_AARCH64: dict[str, int] = {
    "lookup_dcookie": 18, "umount2": 39, "mount": 40, "pivot_root": 41, "nfsservctl": 42,
    "chroot": 51, "vhangup": 58, "quotactl": 60, "acct": 89, "unshare": 97, "kexec_load": 104,
    "init_module": 105, "delete_module": 106, "clock_settime": 112, "syslog": 116, "ptrace": 117,
    "reboot": 142, "settimeofday": 170, "adjtimex": 171, "add_key": 217, "request_key": 218,
    "keyctl": 219, "swapon": 224, "swapoff": 225, "migrate_pages": 238, "move_pages": 239,
    "perf_event_open": 241, "fanotify_init": 262, "name_to_handle_at": 264, "open_by_handle_at": 265,
    "clock_adjtime": 266, "setns": 268, "process_vm_readv": 270, "process_vm_writev": 271,
    "kcmp": 272, "finit_module": 273, "bpf": 280, "userfaultfd": 282, "kexec_file_load": 294,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "pidfd_getfd": 438, "mount_setattr": 442,
}  # fmt: skip

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000
"""Set in x32 call numbers on x86_64; no valid aarch64 number reaches it either."""

ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (AUDIT_ARCH_X86_64, DENIED_X86_64),
    "AMD64": (AUDIT_ARCH_X86_64, DENIED_X86_64),
    "aarch64": (AUDIT_ARCH_AARCH64, DENIED_AARCH64),
    "arm64": (AUDIT_ARCH_AARCH64, DENIED_AARCH64),
}

# classic BPF opcodes (linux/filter.h, linux/bpf_common.h) and seccomp return values
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
_OFFSET_NR, _OFFSET_ARCH = 0, 4  # struct seccomp_data


class SeccompUnsupported(RuntimeError):
    """This machine's architecture has no system call table here."""


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)  # struct sock_filter


def seccomp_program(machine: str | None = None) -> bytes:
    """The filter for `machine` (default: this one) as bwrap reads it: an array of struct
    sock_filter, in native byte order."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise SeccompUnsupported(
            f"no system call table for {machine}; the sandbox's filter knows "
            f"{', '.join(sorted(set(ARCHES) - {'AMD64', 'arm64'}))}"
        )
    arch, denied = ARCHES[machine]
    numbers = sorted(set(denied.values()))
    n = len(numbers)
    if n + 2 > 255:  # classic BPF jump offsets are 8 bits
        raise ValueError(f"{n} denied calls: too many for one run of comparisons")
    program = [
        _insn(_LD_W_ABS, _OFFSET_ARCH),
        _insn(_JEQ_K, arch, jt=1, jf=0),  # another ABI (32-bit calls): to the kill below
        _insn(_RET_K, SECCOMP_RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _OFFSET_NR),
        _insn(_JGE_K, X32_SYSCALL_BIT, jt=n + 2, jf=0),  # x32 numbering: to the last kill
    ]
    # each denied number jumps over the remaining comparisons and the ALLOW, to the EPERM
    program += [_insn(_JEQ_K, nr, jt=n - i, jf=0) for i, nr in enumerate(numbers)]
    program += [
        _insn(_RET_K, SECCOMP_RET_ALLOW),
        _insn(_RET_K, SECCOMP_RET_ERRNO | errno.EPERM),
        _insn(_RET_K, SECCOMP_RET_KILL_PROCESS),
    ]
    return b"".join(program)

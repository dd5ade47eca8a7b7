"""The code sandbox: `bwrap` runs untrusted Python (model-written code) in a bubblewrap sandbox with
no network, a read-only system, a private /tmp, an unprivileged uid of its own, resource limits and
a seccomp filter (`seccomp`, classic BPF assembled in Python); `harness` is the test harness that
runs inside the sandbox with Debian's /usr/bin/python3 and the standard library only (its source is
read from this package and sent in, so it never imports anything of the project). Limits come from
the code domain's config section (`rollout.config.SandboxConfig`), declared once there.
"""

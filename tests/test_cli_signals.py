"""SIGTERM and Ctrl-C: the `counterpoint` entry point's one SIGTERM handler unwinds the stack (every
`finally` runs) and exits 143; `counterpoint serve` in a subprocess on loopback stops its server
gracefully, frees its port and exits 143 on SIGTERM, 130 on SIGINT. Only processes these tests
start are signalled, by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from counterpoint import exit_codes
from counterpoint.cli import main

OPERATOR = "op-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_sigterm_unwinds_through_finally_once():
    before = signal.getsignal(signal.SIGTERM)
    cleaned: list[str] = []
    with pytest.raises(exit_codes.Terminated) as stopped, exit_codes.sigterm_unwinds():
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # this test process, which the handler now guards
            time.sleep(10)
            cleaned.append("not reached")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # a second one during the cleanup is ignored
            time.sleep(0.1)
            cleaned.append("cleanup ran")
    assert stopped.value.code == exit_codes.TERMINATED == 143 and cleaned == ["cleanup ran"]
    assert signal.getsignal(signal.SIGTERM) is before  # put back
    assert not isinstance(stopped.value, Exception)  # `except Exception` in a command does not swallow it


def test_main_leaves_the_signal_handlers_as_it_found_them(capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("counterpoint ")
    assert signal.getsignal(signal.SIGTERM) is before


def _serve(tmp_path: Path, port: int) -> subprocess.Popen:
    (tmp_path / "runs").mkdir(exist_ok=True)
    env = {**os.environ, "COUNTERPOINT_OPERATOR_TOKEN": OPERATOR, "PYTHONUNBUFFERED": "1"}
    env.pop("COUNTERPOINT_TOKENS_FILE", None)
    cmd = [sys.executable, "-m", "counterpoint", "serve", "--runs-dir", str(tmp_path / "runs"), "--port", str(port)]
    # A shell without job control starts background commands with SIGINT ignored, and a Python
    # started so keeps ignoring it (no KeyboardInterrupt): give the server the default disposition.
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    try:
        while True:
            assert proc.poll() is None, f"serve exited with {proc.returncode}: {proc.stdout.read()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "serve did not answer /healthz in 60 s"
            time.sleep(0.2)
    except BaseException:
        proc.kill()  # the process this test started, and only it
        proc.wait()
        raise


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_serve_stops_cleanly_on_a_signal(tmp_path, signum, code):
    port = free_port()
    proc = _serve(tmp_path, port)
    try:
        proc.send_signal(signum)  # the serve process this test started, by its PID
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, out
    assert "Shutting down" in out and "Finished server process" in out  # uvicorn's graceful stop
    if signum == signal.SIGTERM:
        assert out.rstrip().endswith("counterpoint: stopped by SIGTERM")
    assert port_is_free(port)

"""The exit statuses of `counterpoint schedule ...` against a real control plane: `create_app` over
a LocalBackend on a tmp runs folder, served by uvicorn on 127.0.0.1 (a free port, in a thread),
with real bearer tokens; the CLI is `counterpoint.cli.main`, called in this process."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import uvicorn

from counterpoint import exit_codes
from counterpoint.cli import main
from counterpoint.services.app import create_app
from counterpoint.services.auth import Auth
from counterpoint.services.backend import LocalBackend
from counterpoint.trainer.curriculum.controller import ScheduleController

OPERATOR, VIEWER = "op-token-0123456789abcdef", "viewer-token-0123456789ab"
STAGES = [
    {
        "name": "structured",
        "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0}},
        "advance": {"type": "steps", "steps": 2},
    },
    {"name": "creative", "domains": {"creative": {"weight": 1.0}}},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def url(tmp_path):
    """The control plane over one run, `demo`, on a loopback port until the test ends."""
    ScheduleController(tmp_path / "demo", STAGES, domains=["math", "code", "creative"])
    auth = Auth([("alice", OPERATOR, "operator"), ("victor", VIEWER, "viewer")])
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(LocalBackend(tmp_path), auth), host="127.0.0.1", port=free_port(), log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)  # off the main thread: no signal handlers
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "the control plane did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def cli(url, monkeypatch, capsys):
    """`counterpoint schedule ARGS --url URL` with $COUNTERPOINT_TOKEN set to `token` (None: unset)."""

    def run(*argv: str, token: str | None = OPERATOR, at: str | None = None) -> tuple[int, str, str]:
        if token is None:
            monkeypatch.delenv("COUNTERPOINT_TOKEN", raising=False)
        else:
            monkeypatch.setenv("COUNTERPOINT_TOKEN", token)
        code = main(["schedule", *argv, "--url", at or url])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_success_is_0_and_json_parses(cli):
    code, out, _ = cli("show")
    assert code == exit_codes.OK and "1. structured [rl] active" in out
    code, out, _ = cli("show", "--run", "demo", "--json", token=VIEWER)
    assert code == 0 and json.loads(out)["version"] == 1
    code, out, _ = cli("pause", "--run", "demo", "--base-version", "1")
    assert code == 0 and "PAUSED" in out


def test_a_stale_base_version_is_3(cli):
    code, _, err = cli("pause", "--run", "demo", "--base-version", "7")
    assert code == exit_codes.CONFLICT == 3
    assert err.startswith("counterpoint: 409 ") and "version 1, not 7" in err and len(err.splitlines()) == 1
    assert cli("pause", "--run", "demo")[0] == 0  # version 2 now
    assert cli("set-weight", "structured", "math", "0.5", "--run", "demo", "--base-version", "1")[0] == 3
    assert cli("reorder", "creative", "structured", "--run", "demo", "--base-version", "1")[0] == 3


def test_refused_tokens_are_4(cli):
    code, _, err = cli("show", "--run", "demo", token=None)
    assert code == exit_codes.AUTH == 4 and "401" in err and "set $COUNTERPOINT_TOKEN" in err
    code, _, err = cli("show", "--run", "demo", token="not-a-token-anyone-knows")
    assert code == 4 and "401 unknown or wrong token" in err and "check $COUNTERPOINT_TOKEN" in err
    code, _, err = cli("pause", "--run", "demo", token=VIEWER)  # a viewer may read, not write
    assert code == 4 and "403" in err and "'victor' has the viewer role" in err and "operator token" in err
    assert cli("status", "--run", "demo", token=VIEWER)[0] == 0


def test_unknown_runs_and_stages_are_5(cli):
    code, _, err = cli("show", "--run", "ghost")
    assert code == exit_codes.NOT_FOUND == 5 and "404" in err and "ghost" in err
    assert cli("pause", "--run", "ghost")[0] == 5
    assert cli("resume", "--stage", "ghost", "--run", "demo")[0] == 5
    code, _, err = cli("reorder", "nope", "--run", "demo")  # refused by the client, before any write
    assert code == 5 and "unknown stage 'nope'; the stages are structured, creative" in err
    assert cli("show", "--run", "demo", "--version", "9")[0] == 5  # no such schedule version
    code, out, _ = cli("show", "--run", "demo", "--version", "1")
    assert code == 0 and out.startswith("run demo  version 1")


def test_invalid_values_are_2(cli):
    code, _, err = cli("set-weight", "structured", "math", "-1", "--run", "demo")
    assert code == exit_codes.USAGE == 2 and "422" in err and "weight" in err
    code, _, err = cli("set-entropy-target", "structured", "code", "lots", "--run", "demo")
    assert code == 2 and 'must be a number or "none"' in err
    with pytest.raises(SystemExit) as usage:  # argparse's own
        main(["schedule", "no-such-action"])
    assert usage.value.code == 2


def test_an_unreachable_control_plane_is_6(cli):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, _, err = cli("show", "--run", "demo", at=closed)
    assert code == exit_codes.UNREACHABLE == 6
    assert f"cannot reach the control plane at {closed}" in err and "--url" in err and len(err.splitlines()) == 1


def test_the_table_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["schedule", "--help"])
    text = capsys.readouterr().out
    assert "exit status:" in text
    for code, _ in exit_codes.TABLE:
        assert f"\n  {code:<4} " in text


def test_the_exit_codes_are_distinct_and_clear_of_the_shells():
    codes = [code for code, _ in exit_codes.TABLE]
    assert len(set(codes)) == len(codes) == 9
    assert [c for c in codes if 126 <= c <= 165] == [exit_codes.INTERRUPTED, exit_codes.TERMINATED] == [130, 143]
    assert [exit_codes.for_http_status(s) for s in (None, 400, 401, 403, 404, 409, 413, 422, 500, 503)] == [
        2, 2, 4, 4, 5, 3, 2, 2, 1, 1
    ]  # fmt: skip

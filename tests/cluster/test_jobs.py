"""`counterpoint submit` and `counterpoint job ...`: against a `ray start` cluster on loopback (the
integration tests: a real run that succeeds, a job that fails at once, `--no-wait`, status and
list), and, in unit tests, against FakeJobsClient (a stand-in for Ray's JobSubmissionClient) for
the readable table, `--json`, the exit statuses, and Ctrl-C detaching from a job."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from counterpoint import exit_codes
from counterpoint.cli import main
from counterpoint.cluster import jobs, jobs_cli

from .helpers import SMOKE, free_port, small_overrides

CLI = [sys.executable, "-m", "counterpoint"]


def _cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=timeout)


# --- against a real Ray cluster ---


@pytest.mark.integration
def test_submit_waits_streams_and_status_list(tmp_path, model_cache, ray_cluster):
    from counterpoint.config import load_config, resolved_json

    cfg = load_config(SMOKE, overrides=small_overrides(tmp_path, model_cache, "run.name=jobtest"))
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(json.loads(resolved_json(cfg))))
    conn = ("--address", ray_cluster, "--no-auth")
    proc = _cli("submit", str(config_file), *conn, "--name", "jobtest-1", timeout=600)  # waits by default
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "submitted jobtest-1" in proc.stdout and "job jobtest-1: SUCCEEDED" in proc.stdout
    assert "components:" in proc.stdout  # the streamed logs are the run's own console

    status = _cli("job", "status", "jobtest-1", *conn, "--json", timeout=60)
    assert json.loads(status.stdout)["status"] == "SUCCEEDED" and json.loads(status.stdout)["run_name"] == "jobtest"
    listed = _cli("job", "list", *conn, timeout=60)
    assert "jobtest-1" in listed.stdout and "SUCCEEDED" in listed.stdout

    runs = list((tmp_path / "runs").glob("jobtest-*"))
    assert len(runs) == 1
    steps = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["kind"] == "train"] == [1, 2]
    components = [json.loads(line) for line in (runs[0] / "events.jsonl").read_text().splitlines()][1]["components"]
    assert components[0].startswith("ray ") and "joined auto" in components[0]


@pytest.mark.integration
def test_a_failed_job_no_wait_and_unknown_jobs(tmp_path, ray_cluster):
    """A job whose run stops at once (its data file is missing on the cluster): no training."""
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(
        f"run: {{name: failjob, output_dir: {tmp_path / 'runs'}}}\n"
        f"domains:\n  sums: {{kind: math, source: {{path: {tmp_path}/nope.jsonl, prompt: question, answer: gold}}}}\n"
    )
    conn = ("--address", ray_cluster, "--no-auth")
    waited = _cli("submit", str(config_file), *conn, "--name", "failjob-1", timeout=300)
    assert waited.returncode == exit_codes.FAILURE, waited.stdout[-3000:] + waited.stderr[-3000:]
    assert "submitted failjob-1" in waited.stdout and "no such file" in waited.stdout  # the job's own stderr
    assert "job failjob-1: FAILED" in waited.stdout

    started = _cli("submit", str(config_file), *conn, "--name", "failjob-2", "--no-wait", timeout=120)
    assert started.returncode == 0, started.stderr
    follow = f"counterpoint job logs --follow failjob-2 --address {ray_cluster} --no-auth"
    assert "submitted failjob-2" in started.stdout and follow in started.stdout
    followed = _cli("job", "logs", "--follow", "failjob-2", *conn, timeout=300)
    assert followed.returncode == exit_codes.FAILURE and "job failjob-2: FAILED" in followed.stdout

    status = _cli("job", "status", "failjob-1", *conn, "--json")
    row = json.loads(status.stdout)
    assert status.returncode == 0 and row["status"] == "FAILED" and row["run_name"] == "failjob"
    text = _cli("job", "status", "failjob-1", *conn).stdout
    assert text.startswith("job failjob-1: FAILED\n") and "run:        failjob" in text
    table = _cli("job", "list", *conn).stdout.splitlines()
    assert table[0].split() == ["JOB", "ID", "STATUS", "STARTED", "DURATION", "RUN", "/", "ENTRYPOINT"]
    assert [line.split()[:2] for line in table[1:]] == [["failjob-1", "FAILED"], ["failjob-2", "FAILED"]]
    assert {r["job_id"] for r in json.loads(_cli("job", "list", *conn, "--json").stdout)} == {"failjob-1", "failjob-2"}

    unknown = _cli("job", "status", "no-such-job", *conn)
    assert unknown.returncode == exit_codes.NOT_FOUND and "no job no-such-job" in unknown.stderr


def test_an_unreachable_cluster_exits_6(monkeypatch, capsys):
    """The real Jobs client against a closed loopback port."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # configure_auth sets it; monkeypatch puts it back
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", f"http://127.0.0.1:{free_port()}")
    assert main(["job", "list", "--no-auth"]) == exit_codes.UNREACHABLE
    err = capsys.readouterr().err
    assert (
        "cannot reach the Ray Jobs API" in err and "(address from $RAY_ADDRESS)" in err and len(err.splitlines()) == 1
    )


# --- against a fake Jobs client ---


class FakeJobsClient:
    """Stands in for ray.job_submission.JobSubmissionClient: jobs in a dict, log chunks in a list."""

    def __init__(self, address: str, jobs_by_id: dict, chunks: list | None = None, interrupt=None):
        self.address, self.jobs, self.chunks, self.interrupt = address, jobs_by_id, chunks or [], interrupt
        self.submitted: list[dict] = []
        self.stopped: list[str] = []

    def submit_job(self, **kwargs) -> str:
        self.submitted.append(kwargs)
        state = self.jobs.pop("_next_status")  # what the job will have come to when next asked
        end = 1_700_000_005_000 if state in jobs.TERMINAL else None
        self.jobs[kwargs["submission_id"]] = _info(kwargs["submission_id"], state, end=end)
        return kwargs["submission_id"]

    def get_job_info(self, job_id: str):
        if job_id not in self.jobs:
            raise RuntimeError(f"Request failed with status code 404: Job {job_id} does not exist..")
        return self.jobs[job_id]

    def list_jobs(self) -> list:
        return list(self.jobs.values())

    def stop_job(self, job_id: str) -> bool:
        self.get_job_info(job_id)
        self.stopped.append(job_id)
        return True

    async def tail_job_logs(self, job_id: str):
        for chunk in self.chunks:
            yield chunk
            await asyncio.sleep(0)
            if self.interrupt:
                raise self.interrupt  # what Ctrl-C (or our SIGTERM handler) does while the stream waits


def _info(job_id: str, status: str, start: int = 1_700_000_000_000, end: int | None = None, **fields):
    return SimpleNamespace(
        submission_id=job_id,
        job_id="02000000",
        status=status,
        message=fields.get("message", "Job is currently running." if end is None else "Job finished."),
        start_time=start,
        end_time=end,
        entrypoint=fields.get("entrypoint", "python -m counterpoint run --config config.yaml"),
        metadata=fields.get("metadata", {"counterpoint": "run", "run_name": job_id.rsplit("-", 1)[0]}),
    )


@pytest.fixture
def fake(monkeypatch):
    """A FakeJobsClient behind `jobs.client`; the auth variables the CLI sets are put back after."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    for name in jobs_cli.ADDRESS_ENVS:
        monkeypatch.delenv(name, raising=False)
    state = {"jobs": {}, "chunks": [], "interrupt": None, "clients": []}

    def make(address: str) -> FakeJobsClient:
        client = FakeJobsClient(address, state["jobs"], state["chunks"], state["interrupt"])
        state["clients"].append(client)
        return client

    monkeypatch.setattr(jobs, "client", make)
    return state


ADDR = ("--address", "http://127.0.0.1:8265", "--no-auth")


def test_job_list_is_a_table_and_json(fake, capsys):
    fake["jobs"]["demo-2"] = _info("demo-2", "RUNNING", start=1_700_000_300_000)
    fake["jobs"]["demo-1"] = _info("demo-1", "SUCCEEDED", end=1_700_000_192_000)
    fake["jobs"]["raysubmit_x"] = _info(
        "raysubmit_x", "FAILED", start=1_700_000_100_000, end=1_700_003_700_000, entrypoint="echo hi", metadata={}
    )
    assert main(["job", "list", *ADDR]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["JOB", "ID", "STATUS", "STARTED", "DURATION", "RUN", "/", "ENTRYPOINT"]
    order = [["demo-1", "SUCCEEDED"], ["raysubmit_x", "FAILED"], ["demo-2", "RUNNING"]]  # oldest first
    assert [line.split()[:2] for line in lines[1:]] == order
    assert lines[1].split()[-2:] == ["3m12s", "demo"] and lines[2].split()[-3:] == ["1h00m", "echo", "hi"]
    assert len({line.index(line.split()[1 if i else 2]) for i, line in enumerate(lines)}) == 1  # aligned columns
    running = jobs.format_jobs(jobs.list_jobs("x")[-1:], now_ms=1_700_000_305_000)
    assert running.splitlines()[1].split()[-2:] == ["0m05s", "demo"]  # a running job's duration so far

    assert main(["job", "list", *ADDR, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["job_id"] for r in rows] == ["demo-1", "raysubmit_x", "demo-2"]
    assert rows[0] == {
        "job_id": "demo-1",
        "status": "SUCCEEDED",
        "message": "Job finished.",
        "start_time": 1_700_000_000_000,
        "end_time": 1_700_000_192_000,
        "entrypoint": "python -m counterpoint run --config config.yaml",
        "run_name": "demo",
    }
    fake["jobs"].clear()
    assert main(["job", "list", *ADDR]) == 0 and capsys.readouterr().out == "(no jobs)\n"


def test_job_status_text_json_and_not_found(fake, capsys):
    fake["jobs"]["demo-1"] = _info("demo-1", "FAILED", end=1_700_000_061_000, message="exit code 2")
    assert main(["job", "status", "demo-1", *ADDR]) == 0  # reporting a failed job is not a failure
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "job demo-1: FAILED" and "  run:        demo" in text and "  duration:   1m01s" in text
    assert "  message:    exit code 2" in text
    assert main(["job", "status", "demo-1", *ADDR, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "FAILED"
    tail = "Job entrypoint command failed with exit code 2, last available logs (truncated to 20,000 chars):\nboom\n"
    fake["jobs"]["demo-1"].message = tail
    assert main(["job", "status", "demo-1", *ADDR]) == 0
    assert "  message:    Job entrypoint command failed with exit code 2\n" in capsys.readouterr().out
    assert main(["job", "status", "demo-1", *ADDR, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["message"] == tail  # whole, for programs
    assert main(["job", "status", "ghost", *ADDR]) == exit_codes.NOT_FOUND
    err = capsys.readouterr().err
    assert err.startswith("counterpoint: no job ghost on http://127.0.0.1:8265") and len(err.splitlines()) == 1
    assert main(["job", "stop", "ghost", *ADDR]) == exit_codes.NOT_FOUND
    assert main(["job", "logs", "--follow", "ghost", *ADDR]) == exit_codes.NOT_FOUND


@pytest.mark.parametrize("final, code", [("SUCCEEDED", 0), ("FAILED", 1), ("STOPPED", 1)])
def test_submit_waits_streaming_logs_and_exits_with_the_status(fake, capsys, tmp_path, final, code):
    (tmp_path / "my.yaml").write_text("run: {name: demo}\n")
    fake["jobs"]["_next_status"] = final
    fake["chunks"] += ["step 1 ...\n", "step 2 ...\n"]
    assert main(["submit", str(tmp_path / "my.yaml"), *ADDR, "--name", "demo-1"]) == code
    out = capsys.readouterr().out
    assert out.index("submitted demo-1") < out.index("step 1 ...\nstep 2 ...\n") < out.index(f"job demo-1: {final}")
    assert out.endswith(f"job demo-1: {final}\n" if final == "SUCCEEDED" else f"job demo-1: {final} (Job finished.)\n")
    assert fake["clients"][0].submitted[0]["metadata"] == {"counterpoint": "run", "run_name": "demo"}


def test_submit_no_wait_prints_how_to_follow(fake, capsys, tmp_path):
    (tmp_path / "my.yaml").write_text("run: {name: demo}\n")
    fake["jobs"]["_next_status"] = "PENDING"
    fake["chunks"].append("never streamed")
    assert main(["submit", str(tmp_path / "my.yaml"), *ADDR, "--name", "demo-1", "--no-wait"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "submitted demo-1 to http://127.0.0.1:8265"
    assert "counterpoint job logs --follow demo-1 --address http://127.0.0.1:8265 --no-auth" in out
    assert "counterpoint job stop demo-1" in out and "never streamed" not in out


@pytest.mark.parametrize("signal_, code", [(KeyboardInterrupt, 130), (exit_codes.Terminated, 143)])
def test_ctrl_c_or_sigterm_while_waiting_detaches_and_leaves_the_job_running(fake, capsys, tmp_path, signal_, code):
    (tmp_path / "my.yaml").write_text("run: {name: demo}\n")
    fake["jobs"]["_next_status"] = "RUNNING"
    fake["chunks"].append("step 1 ...\n")
    fake["interrupt"] = signal_
    assert main(["submit", str(tmp_path / "my.yaml"), *ADDR, "--name", "demo-1"]) == code
    out, err = capsys.readouterr()
    assert "step 1 ..." in out and "detached from job demo-1; it keeps running" in err
    assert "re-attach: counterpoint job logs --follow demo-1 --address http://127.0.0.1:8265 --no-auth" in err
    assert "stop it:   counterpoint job stop demo-1" in err
    assert not any(c.stopped for c in fake["clients"])  # detaching stops nothing
    assert main(["job", "logs", "--follow", "demo-1", *ADDR]) == code


def test_refused_token_and_server_errors_map_to_their_exit_codes():
    from ray.exceptions import AuthenticationError

    addr = "http://10.0.0.1:8265"
    with pytest.raises(jobs.JobError) as refused, jobs.ray_errors(addr, "j"):
        raise AuthenticationError("Authentication failed: Invalid token\n\nlong help text")
    assert (
        refused.value.code == exit_codes.AUTH
        and "--token-file" in str(refused.value)
        and "\n" not in str(refused.value)
    )
    with pytest.raises(jobs.JobError) as server, jobs.ray_errors(addr):
        raise RuntimeError("Request failed with status code 500: boom.")
    assert server.value.code == exit_codes.FAILURE
    with pytest.raises(jobs.JobError) as taken, jobs.ray_errors(addr):
        raise RuntimeError("Request failed with status code 400: Job with submission_id demo-1 already exists.")
    assert taken.value.code == exit_codes.USAGE
    with pytest.raises(KeyError), jobs.ray_errors(addr):  # not an answer of the API: raised as it is
        raise KeyError("bug")


def test_the_address_is_the_flag_then_ray_api_server_address_then_ray_address():
    both = {"RAY_API_SERVER_ADDRESS": "http://a:8265", "RAY_ADDRESS": "http://b:8265"}
    assert jobs_cli.resolve_address("http://c:8265", both) == ("http://c:8265", "--address")
    assert jobs_cli.resolve_address(None, both) == ("http://a:8265", "$RAY_API_SERVER_ADDRESS")
    assert jobs_cli.resolve_address(None, {"RAY_ADDRESS": "http://b:8265"}) == ("http://b:8265", "$RAY_ADDRESS")
    assert jobs_cli.resolve_address(None, {}) == (None, "")


def test_ray_address_is_read_and_a_missing_address_is_a_usage_error(fake, monkeypatch, capsys):
    with pytest.raises(SystemExit) as shown:
        main(["submit", "--help"])
    text = capsys.readouterr().out
    assert shown.value.code == 0 and "$RAY_ADDRESS" in text and "exit status:" in text and "143" in text
    assert main(["job", "list", "--no-auth"]) == exit_codes.USAGE
    assert "pass --address" in capsys.readouterr().err
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8266")
    assert main(["job", "list", "--no-auth"]) == 0
    assert fake["clients"][-1].address == "http://127.0.0.1:8266"

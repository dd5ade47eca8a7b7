"""Runs on a Ray cluster through the Ray Jobs API: submit, status, logs, stop, list.

`counterpoint submit CONFIG --address http://HOST:8265` uploads the config (and nothing else:
the cluster's image has Counterpoint installed) as the job's working directory and starts
`counterpoint run --config config.yaml` there, joined to that cluster. Ray token auth stays on:
the token comes from --token-file, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN; only a loopback
address may be used without one (--no-auth), as tests and a local `ray start` do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import yaml

from counterpoint.config import CounterpointConfig

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
AGENT_WAIT_S = 90.0
"""How long a submit waits for a freshly started head's job agent."""


class JobError(RuntimeError):
    """A job operation that cannot be done; the message says what to fix."""


def _is_loopback(address: str) -> bool:
    host = urlparse(address if "://" in address else f"http://{address}").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def configure_auth(address: str, *, token_file: str | None, no_auth: bool) -> str:
    """Set the Ray client's auth environment; returns a description for messages."""
    if no_auth:
        if not _is_loopback(address):
            raise JobError(f"--no-auth is only allowed for a loopback address, not {address}: pass --token-file")
        os.environ["RAY_AUTH_MODE"] = "disabled"
        return "auth disabled (loopback)"
    os.environ["RAY_AUTH_MODE"] = "token"
    if token_file:
        if not Path(token_file).is_file():
            raise JobError(f"--token-file {token_file}: no such file")
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(Path(token_file).resolve())
    elif not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        raise JobError("Ray token auth is on: pass --token-file, or set RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN")
    return "token auth"


def client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as err:  # connection refused, 401, bad URL: one clear line for the CLI
        raise JobError(f"cannot reach the Ray Jobs API at {address}: {err}") from None


def submit(address: str, cfg: CounterpointConfig, *, name: str | None = None, env: dict[str, str] | None = None) -> str:
    """Submit `cfg` as a job; returns the submission id. The job joins the cluster it runs on."""

    data = cfg.model_dump(mode="json")
    data["cluster"]["address"] = "auto"  # the job's driver joins the cluster it was submitted to
    data["cluster"]["auth_mode"] = "token" if os.environ.get("RAY_AUTH_MODE") == "token" else "disabled"
    workdir = Path(tempfile.mkdtemp(prefix="counterpoint-job-"))
    try:
        (workdir / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        runtime_env = {
            "working_dir": str(workdir),
            "env_vars": {"PYTHONUNBUFFERED": "1", "RAY_AUTH_MODE": data["cluster"]["auth_mode"], **(env or {})},
        }
        submission_id = name or f"{cfg.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        jobs_api = client(address)
        deadline = time.time() + AGENT_WAIT_S
        while True:
            try:
                return jobs_api.submit_job(
                    entrypoint="python -m counterpoint run --config config.yaml",
                    runtime_env=runtime_env,
                    submission_id=submission_id,
                    metadata={"counterpoint": "run", "run_name": cfg.run.name},
                )
            except RuntimeError as err:
                # A head that just started answers before its job agent is up; that passes.
                if "No available agent" not in str(err) or time.time() > deadline:
                    raise
                time.sleep(2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def status(address: str, job_id: str) -> dict:
    info = client(address).get_job_info(job_id)
    return {
        "job_id": job_id,
        "status": str(info.status.value if hasattr(info.status, "value") else info.status),
        "message": info.message,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "entrypoint": info.entrypoint,
    }


def wait(address: str, job_id: str, *, timeout_s: float, poll_s: float = 2.0) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        state = status(address, job_id)["status"]
        if state in TERMINAL:
            return state
        time.sleep(poll_s)
    raise JobError(f"job {job_id} did not finish within {timeout_s:.0f}s")


def logs(address: str, job_id: str) -> str:
    return client(address).get_job_logs(job_id)


async def follow(address: str, job_id: str):
    """Yield log chunks until the job ends."""
    async for chunk in client(address).tail_job_logs(job_id):
        yield chunk


def stop(address: str, job_id: str) -> bool:
    return client(address).stop_job(job_id)


def list_jobs(address: str) -> list[dict]:
    out = []
    for info in client(address).list_jobs():
        out.append(
            {
                "job_id": info.submission_id,
                "status": str(getattr(info.status, "value", info.status)),
                "entrypoint": info.entrypoint,
                "start_time": info.start_time,
            }
        )
    return out


def format_jobs(rows: list[dict]) -> str:
    return "\n".join(json.dumps(r) for r in rows) if rows else "(no jobs)"

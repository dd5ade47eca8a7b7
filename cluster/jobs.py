"""Runs on a Ray cluster through the Ray Jobs API: submit, status, logs, stop, list.

`counterpoint submit CONFIG --address http://HOST:8265` uploads the config (and nothing else:
the cluster's image has Counterpoint installed) as the job's working directory and starts
`counterpoint run --config config.yaml` there, joined to that cluster. Ray token auth stays on:
the token comes from --token-file, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN; only a loopback
address may be used without one (--no-auth), as tests and a local `ray start` do.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import yaml

from counterpoint import exit_codes
from counterpoint.config import CounterpointConfig

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
AGENT_WAIT_S = 90.0
"""How long a submit waits for a freshly started head's job agent."""


class JobError(RuntimeError):
    """A job operation that cannot be done; the message says what to fix, `code` is the exit
    status it maps to (`counterpoint.exit_codes`: bad usage by default)."""

    def __init__(self, message: str, code: int = exit_codes.USAGE):
        super().__init__(message)
        self.code = code


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


@contextmanager
def ray_errors(address: str, job_id: str | None = None) -> Iterator[None]:
    """Turn what the Ray Jobs client raises into a one-line JobError with its exit status: a
    refused token, an unreachable address, an unknown job, or another answer of the API."""
    try:
        yield
    except JobError:
        raise
    except Exception as err:  # noqa: BLE001 - mapped, or raised again below
        raise _mapped(err, address, job_id) from None


def _mapped(err: Exception, address: str, job_id: str | None) -> Exception:
    text = _first_line(err)
    if isinstance(err, OSError):  # refused, timed out, unknown host (requests' and aiohttp's errors are OSErrors)
        return JobError(
            f"cannot reach the Ray Jobs API at {address} ({text}): is the cluster up and this its dashboard "
            "address (http://HOST:8265)? Pass --address or set $RAY_API_SERVER_ADDRESS / $RAY_ADDRESS",
            exit_codes.UNREACHABLE,
        )
    if isinstance(err, ValueError):  # an address the Jobs client cannot use ('auto', ray://...)
        return JobError(f"{address} is not a Ray Jobs API address ({text}): pass the dashboard's http://HOST:8265")
    # Ray's errors name the HTTP status in their text; aiohttp's (the log tail) carry it as .status
    found = re.search(r"status code (\d{3})", str(err))
    status = int(found.group(1)) if found else getattr(err, "status", None)
    if type(err).__name__ == "AuthenticationError" or status in (401, 403):
        return JobError(
            f"the Ray Jobs API at {address} refused the token ({text}): pass --token-file, or set "
            "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN to the cluster's token",
            exit_codes.AUTH,
        )
    if job_id is not None and (status == 404 or "does not exist" in text):
        return JobError(
            f"no job {job_id} on {address}: `counterpoint job list` shows the jobs there", exit_codes.NOT_FOUND
        )
    if isinstance(err, RuntimeError) or isinstance(status, int):
        code = exit_codes.for_http_status(status) if isinstance(status, int) else exit_codes.FAILURE
        return JobError(f"the Ray Jobs API at {address}: {text}", code)
    return err  # not an answer of the API: a bug, raised as it is


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0].rstrip(".:")


def client(address: str):
    from ray.job_submission import JobSubmissionClient

    with ray_errors(address):
        return JobSubmissionClient(address)


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
            except Exception as err:  # noqa: BLE001 - mapped, or raised again
                # A head that just started answers before its job agent is up; that passes.
                if "No available agent" not in str(err) or time.time() > deadline:
                    raise _mapped(err, address, None) from None
                time.sleep(2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _row(info, job_id: str | None = None) -> dict:
    """One job as the CLI prints it (times in milliseconds since the epoch, as Ray gives them)."""
    metadata = getattr(info, "metadata", None) or {}
    return {
        "job_id": job_id or info.submission_id or info.job_id,
        "status": str(getattr(info.status, "value", info.status)),
        "message": info.message,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "entrypoint": info.entrypoint,
        "run_name": metadata.get("run_name"),
    }


def status(address: str, job_id: str) -> dict:
    jobs_api = client(address)
    with ray_errors(address, job_id):
        return _row(jobs_api.get_job_info(job_id), job_id)


def wait(address: str, job_id: str, *, timeout_s: float, poll_s: float = 2.0) -> dict:
    """The job's status once it is SUCCEEDED, FAILED or STOPPED."""
    deadline = time.time() + timeout_s
    while True:
        row = status(address, job_id)
        if row["status"] in TERMINAL:
            return row
        if time.time() > deadline:
            raise JobError(f"job {job_id} did not finish within {timeout_s:.0f}s", exit_codes.FAILURE)
        time.sleep(poll_s)


def logs(address: str, job_id: str) -> str:
    jobs_api = client(address)
    with ray_errors(address, job_id):
        return jobs_api.get_job_logs(job_id)


async def follow(address: str, job_id: str) -> AsyncIterator[str]:
    """Yield log chunks until the job ends."""
    jobs_api = client(address)
    with ray_errors(address, job_id):
        async for chunk in jobs_api.tail_job_logs(job_id):
            yield chunk


def stop(address: str, job_id: str) -> bool:
    jobs_api = client(address)
    with ray_errors(address, job_id):
        return jobs_api.stop_job(job_id)


def list_jobs(address: str) -> list[dict]:
    """Every job on the cluster, oldest first."""
    jobs_api = client(address)
    with ray_errors(address):
        rows = [_row(info) for info in jobs_api.list_jobs()]
    return sorted(rows, key=lambda r: r["start_time"] or 0)


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def _duration(row: dict, now_ms: float) -> str:
    if not row["start_time"]:
        return "-"
    seconds = int(((row["end_time"] or now_ms) - row["start_time"]) / 1000)
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def format_jobs(rows: list[dict], now_ms: float | None = None) -> str:
    """The table `counterpoint job list` prints: id, status, start, duration (so far, for a job
    still running), and the run's name, or the entrypoint of a job that is not a Counterpoint run."""
    if not rows:
        return "(no jobs)"
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    table = [("JOB ID", "STATUS", "STARTED", "DURATION", "RUN / ENTRYPOINT")]
    table += [
        (r["job_id"], r["status"], _when(r["start_time"]), _duration(r, now_ms), r["run_name"] or r["entrypoint"] or "")
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(4)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line[:4], widths)) + "  " + line[4] for line in table)


def short_message(message: str | None) -> str:
    """A job's message on one line: Ray's for a failed entrypoint goes on with the log's tail,
    which the logs themselves show (and `--json` keeps whole)."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return re.split(r",? last available logs", first)[0].rstrip(":")


def format_status(row: dict, now_ms: float | None = None) -> str:
    """What `counterpoint job status` prints: the state on the first line, then one field a line."""
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    lines = [f"job {row['job_id']}: {row['status']}"]
    fields = (
        ("run", row["run_name"]),
        ("entrypoint", row["entrypoint"]),
        ("started", _when(row["start_time"]) if row["start_time"] else None),
        ("ended", _when(row["end_time"]) if row["end_time"] else None),
        ("duration", _duration(row, now_ms) if row["start_time"] else None),
        ("message", short_message(row["message"])),
    )
    lines += [f"  {name + ':':<11} {value}" for name, value in fields if value]
    return "\n".join(lines)

"""`counterpoint submit` and `counterpoint job status|logs|stop|list`: runs on a Ray cluster.

They behave as `ray job ...` does: `submit` waits for the job, streaming its logs, and ends with
its final status (exit 0 only on SUCCEEDED); `--no-wait` returns at once. Ctrl-C while waiting
detaches and leaves the job running. The address comes from --address, else
$RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS, in the order Ray's own CLI reads them. Exit statuses:
`counterpoint.exit_codes`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping

from counterpoint import exit_codes

COMMANDS = ("submit", "job")
ADDRESS_ENVS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
"""Where the Jobs API's address comes from without --address, first match wins (as in `ray job`)."""
FINAL_WAIT_S = 60.0
"""How long to wait, after the log stream ends, for the job's status to become final."""

SUBMIT_EPILOG = """\
examples:
  counterpoint submit my.yaml --address http://ray-head:8265 --token-file ~/.ray/token   # waits, streams logs
  counterpoint submit my.yaml --no-wait                        # prints the job id and returns
  counterpoint submit my.yaml --address http://127.0.0.1:8265 --no-auth    # a local test cluster
  counterpoint job status counterpoint-20261126-120001 [--json]
  counterpoint job logs --follow counterpoint-20261126-120001
  counterpoint job stop counterpoint-20261126-120001
  counterpoint job list [--json]

The address is --address, else $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS (as `ray job` reads
them): the cluster's dashboard, http://HOST:8265. The token comes from --token-file,
$RAY_AUTH_TOKEN_PATH or $RAY_AUTH_TOKEN; --no-auth is refused for non-loopback addresses.
Ctrl-C while submit or `job logs --follow` waits only detaches: the job keeps running (stop it
with `counterpoint job stop ID`).

""" + exit_codes.epilog()


def _conn() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--address",
        default=None,
        help="the Ray dashboard (Jobs API), http://HOST:8265 (default: $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS)",
    )
    p.add_argument("--token-file", help="file holding the cluster's Ray auth token")
    p.add_argument("--no-auth", action="store_true", help="no Ray token (loopback addresses only)")
    return p


def _parser_args(helptext: str) -> dict:
    return {"help": helptext, "epilog": SUBMIT_EPILOG, "formatter_class": argparse.RawDescriptionHelpFormatter}


def register(sub: argparse._SubParsersAction, add_config_args: Callable[..., None]) -> None:
    conn = _conn()
    s = sub.add_parser(
        "submit",
        parents=[conn],
        description="Submit a training run to a Ray cluster through its Jobs API, then wait for it, "
        "streaming its logs, and exit with its final status (0 only on SUCCEEDED).",
        **_parser_args("submit a run to a Ray cluster (Ray Jobs API) and follow it"),
    )
    s.add_argument("config_path", metavar="CONFIG", help="the run's YAML config")
    add_config_args(s, with_config=False)
    s.add_argument("--name", help="submission id (default: <run.name>-<timestamp>)")
    s.add_argument(
        "--no-wait", action="store_true", help="return once submitted, printing the job id and how to follow it"
    )
    s.add_argument("--follow", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    job = sub.add_parser("job", **_parser_args("status, logs, stop or list runs on a Ray cluster"))
    jsub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    for name, helptext in (("status", "a job's status"), ("logs", "a job's logs"), ("stop", "stop a job")):
        p = jsub.add_parser(name, parents=[conn], **_parser_args(helptext))
        p.add_argument("job_id", metavar="ID")
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="stream until the job ends; exit with its status")
        if name == "status":
            p.add_argument("--json", action="store_true", help="print the status as JSON")
    listing = jsub.add_parser("list", parents=[conn], **_parser_args("every job on the cluster, as a table"))
    listing.add_argument("--json", action="store_true", help="print the jobs as a JSON list")


def resolve_address(given: str | None, env: Mapping[str, str] = os.environ) -> tuple[str | None, str]:
    """(address, where it came from): --address, else the first of ADDRESS_ENVS that is set."""
    if given:
        return given, "--address"
    for name in ADDRESS_ENVS:
        if env.get(name):
            return env[name], f"${name}"
    return None, ""


def main_for(args: argparse.Namespace) -> int:
    from counterpoint.cluster import jobs
    from counterpoint.config import ConfigError, load_config

    address, source = resolve_address(args.address)
    try:
        if not address:
            raise jobs.JobError(
                "no Ray cluster address: pass --address http://HOST:8265 or set $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS"
            )
        jobs.configure_auth(address, token_file=args.token_file, no_auth=args.no_auth)
        if args.command == "submit":
            cfg = load_config(args.config_path, args.overrides)
            job_id = jobs.submit(address, cfg, name=args.name)
            return _after_submit(args, address, job_id)
        if args.job_command == "list":
            rows = jobs.list_jobs(address)
            print(json.dumps(rows, indent=2) if args.json else jobs.format_jobs(rows))
        elif args.job_command == "status":
            row = jobs.status(address, args.job_id)
            print(json.dumps(row, indent=2) if args.json else jobs.format_status(row))
        elif args.job_command == "stop":
            print("stopping" if jobs.stop(address, args.job_id) else "already finished")
        elif args.follow:
            return _follow(address, args.job_id, _flags(args, address))
        else:
            print(jobs.logs(address, args.job_id), end="")
        return exit_codes.OK
    except jobs.JobError as err:
        where = f" (address from {source})" if source.startswith("$") and address and address in str(err) else ""
        print(f"counterpoint: {err}{where}", file=sys.stderr)
        return err.code
    except ConfigError as err:
        print(f"counterpoint: {err}", file=sys.stderr)
        return exit_codes.USAGE


def _flags(args: argparse.Namespace, address: str) -> str:
    """The connection flags to repeat in the commands we suggest, so that they work as printed."""
    flags = f" --address {address}"
    if args.token_file:
        flags += f" --token-file {args.token_file}"
    return flags + (" --no-auth" if args.no_auth else "")


def _after_submit(args: argparse.Namespace, address: str, job_id: str) -> int:
    flags = _flags(args, address)
    print(f"submitted {job_id} to {address}", flush=True)
    if args.no_wait:
        print(f"  follow its logs: counterpoint job logs --follow {job_id}{flags}")
        print(f"  its status:      counterpoint job status {job_id}{flags}")
        print(f"  stop it:         counterpoint job stop {job_id}{flags}")
        return exit_codes.OK
    print("following its logs until it ends (Ctrl-C detaches; the job keeps running):", flush=True)
    return _follow(address, job_id, flags)


def submitter(address: str, *, token_file: str | None, no_auth: bool):
    """A `(config, name) -> job id` that submits runs to the Ray Jobs API at `address` (what
    `counterpoint serve --ray-address` gives POST /v1/runs). JobError when auth cannot be set up."""
    from counterpoint.cluster import jobs

    jobs.configure_auth(address, token_file=token_file, no_auth=no_auth)
    return lambda cfg, name: jobs.submit(address, cfg, name=name)


def _follow(address: str, job_id: str, flags: str) -> int:
    """Stream the job's logs until it ends, then print its final status: exit 0 only on
    SUCCEEDED. Ctrl-C (or SIGTERM) detaches: the job keeps running; we say how to go on."""
    from counterpoint.cluster import jobs

    async def stream() -> None:
        async for chunk in jobs.follow(address, job_id):
            print(chunk, end="", flush=True)

    jobs.status(address, job_id)  # an unknown job: a clean 404 before the log stream is opened
    try:
        asyncio.run(stream())
        row = jobs.wait(address, job_id, timeout_s=FINAL_WAIT_S, poll_s=0.5)
    except (KeyboardInterrupt, exit_codes.Terminated) as err:
        print(
            f"\ncounterpoint: detached from job {job_id}; it keeps running on the cluster.\n"
            f"  re-attach: counterpoint job logs --follow {job_id}{flags}\n"
            f"  stop it:   counterpoint job stop {job_id}{flags}",
            file=sys.stderr,
        )
        if isinstance(err, exit_codes.Terminated):
            raise
        return exit_codes.INTERRUPTED
    message = jobs.short_message(row["message"]) if row["status"] != "SUCCEEDED" else ""
    message = f" ({message})" if message else ""
    print(f"job {job_id}: {row['status']}{message}")
    return exit_codes.OK if row["status"] == "SUCCEEDED" else exit_codes.FAILURE

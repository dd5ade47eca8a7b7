"""`counterpoint submit` and `counterpoint job status|logs|stop|list`: runs on a Ray cluster."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

COMMANDS = ("submit", "job")
ADDRESS_ENV = "RAY_API_SERVER_ADDRESS"

SUBMIT_EPILOG = """\
examples:
  counterpoint submit my.yaml --address http://ray-head:8265 --token-file ~/.ray/token --follow
  counterpoint submit my.yaml --address http://127.0.0.1:8265 --no-auth    # a local test cluster
  counterpoint job status counterpoint-20261126-120001 --address http://ray-head:8265
  counterpoint job logs counterpoint-20261126-120001 --follow
  counterpoint job stop counterpoint-20261126-120001
  counterpoint job list

The address defaults to $RAY_API_SERVER_ADDRESS. The token comes from --token-file,
$RAY_AUTH_TOKEN_PATH or $RAY_AUTH_TOKEN; --no-auth is refused for non-loopback addresses.
"""


def _conn() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--address", default=os.environ.get(ADDRESS_ENV), help="Ray dashboard / Jobs API URL, e.g. http://HOST:8265"
    )
    p.add_argument("--token-file", help="file holding the cluster's Ray auth token")
    p.add_argument("--no-auth", action="store_true", help="no Ray token (loopback addresses only)")
    return p


def register(sub: argparse._SubParsersAction, add_config_args) -> None:
    conn = _conn()
    s = sub.add_parser(
        "submit",
        parents=[conn],
        help="submit a run to a Ray cluster (Ray Jobs API)",
        description="Submit a training run to a Ray cluster through its Jobs API.",
        epilog=SUBMIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("config_path", metavar="CONFIG", help="the run's YAML config")
    add_config_args(s, with_config=False)
    s.add_argument("--name", help="submission id (default: <run.name>-<timestamp>)")
    s.add_argument(
        "--follow", action="store_true", help="stream the job's logs until it ends; exit 0 only on SUCCEEDED"
    )
    job = sub.add_parser(
        "job",
        help="status, logs, stop or list runs on a Ray cluster",
        epilog=SUBMIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    jsub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    for name, helptext in (("status", "a job's status"), ("logs", "a job's logs"), ("stop", "stop a job")):
        p = jsub.add_parser(name, parents=[conn], help=helptext)
        p.add_argument("job_id")
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="stream until the job ends")
    jsub.add_parser("list", parents=[conn], help="every job on the cluster")


def main_for(args) -> int:
    from counterpoint.cluster import jobs
    from counterpoint.config import ConfigError, load_config

    try:
        if not args.address:
            raise jobs.JobError(f"--address is required (or set ${ADDRESS_ENV}), e.g. http://HOST:8265")
        jobs.configure_auth(args.address, token_file=args.token_file, no_auth=args.no_auth)
        if args.command == "submit":
            cfg = load_config(args.config_path, args.overrides)
            job_id = jobs.submit(args.address, cfg, name=args.name)
            print(f"submitted {job_id} to {args.address}")
            if args.follow:
                return _follow(args.address, job_id)
            return 0
        if args.job_command == "list":
            print(jobs.format_jobs(jobs.list_jobs(args.address)))
        elif args.job_command == "status":
            print(json.dumps(jobs.status(args.address, args.job_id)))
        elif args.job_command == "stop":
            print("stopping" if jobs.stop(args.address, args.job_id) else "already finished")
        elif args.follow:
            return _follow(args.address, args.job_id)
        else:
            print(jobs.logs(args.address, args.job_id), end="")
        return 0
    except (jobs.JobError, ConfigError) as err:
        print(f"counterpoint: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # the Jobs API's own errors (unknown job id, ...)
        print(f"counterpoint: {err}", file=sys.stderr)
        return 1


def submitter(address: str, *, token_file: str | None, no_auth: bool):
    """A `(config, name) -> job id` that submits runs to the Ray Jobs API at `address` (what
    `counterpoint serve --ray-address` gives POST /v1/runs). JobError when auth cannot be set up."""
    from counterpoint.cluster import jobs

    jobs.configure_auth(address, token_file=token_file, no_auth=no_auth)
    return lambda cfg, name: jobs.submit(address, cfg, name=name)


def _follow(address: str, job_id: str) -> int:
    from counterpoint.cluster import jobs

    async def stream():
        async for chunk in jobs.follow(address, job_id):
            print(chunk, end="", flush=True)

    asyncio.run(stream())
    state = jobs.wait(address, job_id, timeout_s=60)
    print(f"job {job_id}: {state}")
    return 0 if state == "SUCCEEDED" else 1

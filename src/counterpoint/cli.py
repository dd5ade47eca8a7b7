"""The `counterpoint` command: the cluster's commands and the control plane's, side by side.

`counterpoint.cluster.cli` owns `run`, `config`, `submit` and `job`; `counterpoint.services.cli`
owns `schedule` and `serve`; `counterpoint.study.cli` owns `study`; `report` is
`counterpoint.trainer.report.report_main`. Neither
package imports the other: this module composes their subcommands and hands `serve` the
cluster's Ray-job submitter (for `serve --ray-address`).
Heavy frameworks (ray, vllm, deepspeed, uvicorn) load only inside the command that needs them,
so `counterpoint --help` stays fast. Every command runs under one SIGTERM handler
(`counterpoint.exit_codes.sigterm_unwinds`): SIGTERM unwinds the stack as Ctrl-C does, so every
`finally` runs, and the process exits 143; the exit statuses are `counterpoint.exit_codes.TABLE`.
"""

from __future__ import annotations

import argparse
import sys

from counterpoint import exit_codes
from counterpoint.cluster import cli as cluster_cli
from counterpoint.cluster import jobs_cli
from counterpoint.services import cli as services_cli
from counterpoint.study import cli as study_cli

DESCRIPTION = """\
Counterpoint: distributed RL post-training for language models on several task domains at once
(math, code, creative), with per-domain entropy, diversity and reward visible at every step.

`counterpoint run` with no arguments trains the built-in tiny model on this machine through the
whole distributed path: an embedded Ray cluster, a vLLM rollout engine, reward workers per domain
and a DeepSpeed learner. It writes everything to runs/<run_id>/. `counterpoint study run quick`
runs a built-in study: several such runs, their intervals over seeds and verdicts on claims.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="counterpoint",
        description=DESCRIPTION,
        epilog=exit_codes.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # The order `counterpoint --help` lists them in: train, steer, cluster jobs, check a config.
    cluster_cli.register_run(sub)
    services_cli.register(sub)
    cluster_cli.register_jobs(sub)
    cluster_cli.register_config(sub)
    study_cli.register(sub)
    # listed here; its arguments are report_main's own (`counterpoint report --help`)
    sub.add_parser("report", help="write the HTML report of one run or several compared", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status (130 after Ctrl-C, 143 after SIGTERM, once cleaned up)."""
    with exit_codes.sigterm_unwinds():
        try:
            return _main(argv)
        except KeyboardInterrupt:
            print("counterpoint: interrupted", file=sys.stderr)
            return exit_codes.INTERRUPTED
        except exit_codes.Terminated:
            print("counterpoint: stopped by SIGTERM", file=sys.stderr)
            return exit_codes.TERMINATED


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:  # matplotlib loads only here
        from counterpoint.trainer.report import report_main

        return report_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.version:
        from counterpoint import __version__

        print(f"counterpoint {__version__}")
        return 0
    if args.command is None:
        build_parser().print_help()
        return 0
    if args.command in study_cli.COMMANDS:
        return study_cli.main_for(args)
    if args.command in services_cli.COMMANDS:
        return services_cli.main_for(args, make_submitter=jobs_cli.submitter)
    return cluster_cli.main_for(args)


if __name__ == "__main__":
    sys.exit(main())

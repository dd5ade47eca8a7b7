"""The cluster's commands: `counterpoint run`, `config`, `submit` and `job`.

The `counterpoint` command itself is `counterpoint.cli`, which adds these with `register(sub)`
and runs them with `main_for(args)`; this package knows nothing of the control plane's commands.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from counterpoint.cluster import jobs_cli

COMMANDS = ("run", "config", *jobs_cli.COMMANDS)

RUN_EPILOG = """\
examples:
  counterpoint run                                   # the default: tiny model, 3 domains, embedded Ray
  counterpoint run --steps 10                        # shorter
  counterpoint run --config my.yaml --set learner.learning_rate=1e-4 --set domains.code.weight=0
  counterpoint config --set generation.samples_per_prompt=4   # validate and print the resolved config
  counterpoint run --resume runs/counterpoint-20261126-120001    # continue a stopped run

The run folder holds config.json (resolved config), metrics.jsonl (one line per step and per
evaluation: per-domain reward, accuracy, pass@k, token entropy, output diversity, effective rank,
phase times), events.jsonl, summary.json (first and last evaluation, the entropy-performance law,
BWT/FWT), tensorboard/ (`tensorboard --logdir runs`), report/report.html (`counterpoint report`),
checkpoint/ (DeepSpeed learner + driver state) and final_model/.
"""


def _add_config_args(p: argparse.ArgumentParser, with_config: bool = True) -> None:
    if with_config:
        p.add_argument("--config", metavar="PATH", help="YAML config (default: the shipped default.yaml)")
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one config field, e.g. --set learner.ranks=1 (repeatable)",
    )


def register_run(sub: argparse._SubParsersAction) -> None:
    """Add `run` to the `counterpoint` subparsers."""
    run = sub.add_parser(
        "run",
        help="train: the embedded default when given no arguments",
        description="Run one RL training job (embedded Ray unless cluster.address is set).",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_args(run)
    run.add_argument("--steps", type=int, help="shorthand for --set run.steps=N")
    run.add_argument("--output-dir", metavar="DIR", help="shorthand for --set run.output_dir=DIR")
    run.add_argument(
        "--run-dir",
        metavar="DIR",
        help="write the run to exactly this folder (new or empty) instead of <output_dir>/<name>-<time>",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a run from its last checkpoint (its own config, plus any --set/--steps)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")


def register_jobs(sub: argparse._SubParsersAction) -> None:
    """Add `submit` and `job` to the `counterpoint` subparsers."""
    jobs_cli.register(sub, _add_config_args)


def register_config(sub: argparse._SubParsersAction) -> None:
    """Add `config` to the `counterpoint` subparsers."""
    cfg = sub.add_parser(
        "config",
        help="validate a config and print it resolved, as JSON",
        description="Validate a config (with overrides) and print the resolved tree.",
    )
    _add_config_args(cfg)


def register(sub: argparse._SubParsersAction) -> None:
    """Add every command of this package (`COMMANDS`) to the `counterpoint` subparsers."""
    register_run(sub)
    register_jobs(sub)
    register_config(sub)


def main_for(args: argparse.Namespace) -> int:
    """Run one of `COMMANDS`; the exit status (2 for a config that cannot be used)."""
    if args.command in jobs_cli.COMMANDS:
        return jobs_cli.main_for(args)
    from counterpoint.config import ConfigError, load_config, resolved_json

    overrides = list(args.overrides)
    if getattr(args, "steps", None) is not None:
        overrides.append(f"run.steps={args.steps}")
    if getattr(args, "output_dir", None):
        overrides.append(f"run.output_dir={args.output_dir}")
    resume = getattr(args, "resume", None)
    run_dir = getattr(args, "run_dir", None)
    try:
        if run_dir and resume:
            raise ConfigError("--run-dir and --resume: give one (--resume continues the run in its own folder)")
        if run_dir and Path(run_dir).exists() and any(Path(run_dir).iterdir()):
            raise ConfigError(
                f"--run-dir {run_dir}: the folder is not empty; continue a run there with --resume {run_dir}"
            )
        if resume:
            if args.config:
                raise ConfigError("--resume uses the run's own config.json; change fields with --set")
            from counterpoint.cluster.launch import resume_config

            config = resume_config(Path(resume), overrides)
        else:
            config = load_config(args.config, overrides)
    except ConfigError as err:
        print(f"counterpoint: {err}", file=sys.stderr)
        return 2
    if args.command == "config":
        print(resolved_json(config))
        return 0
    return _run(config, quiet=args.quiet, resume=Path(resume) if resume else None, run_dir=run_dir)


def _run(config, quiet: bool, resume: Path | None, run_dir: str | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("ray", "vllm", "deepspeed", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from counterpoint import exit_codes
    from counterpoint.cluster.launch import run_training
    from counterpoint.config import ConfigError
    from counterpoint.rollout.rewards.sandbox.bwrap import SandboxUnavailable

    # SIGTERM (a scheduler, `kill PID`) unwinds like Ctrl-C (the entry point's handler,
    # counterpoint/exit_codes.py), so the run records the stop and shuts its own Ray cluster down.
    from counterpoint.trainer.run_folder import RunFolder

    try:
        folder = RunFolder(resume) if resume else RunFolder(Path(run_dir)) if run_dir else None
        summary = run_training(config, folder, resume=resume is not None)
    except ConfigError as err:
        print(f"counterpoint: {err}", file=sys.stderr)
        return 2
    except (SandboxUnavailable, FileNotFoundError) as err:
        print(f"counterpoint: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, exit_codes.Terminated) as err:
        print("counterpoint: interrupted; the run folder keeps everything up to the last step", file=sys.stderr)
        return exit_codes.TERMINATED if isinstance(err, exit_codes.Terminated) else 130
    print(format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    lines = [
        f"run {summary['run_id']} finished in {summary['seconds']:.0f}s; folder: {summary['run_dir']}",
        "held-out eval, start -> end:",
    ]
    for domain, ev in summary["eval"].items():
        key = "accuracy" if ev["end"]["accuracy"] is not None else "reward_mean"
        lines.append(f"  {domain:<9} {key:<12} {ev['start'][key]:.3f} -> {ev['end'][key]:.3f}")
    return "\n".join(lines)

"""`counterpoint study list | run NAME | report DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMANDS = ("study",)

EPILOG = """\
examples:
  counterpoint study list
  counterpoint study run quick                      # one seed, a few minutes, into runs/study-quick
  counterpoint study run controls --out runs/study-controls   # run again to resume it
  counterpoint study run my_study.yaml --seeds 0 1 --steps 30 --set generation.prompts_per_step=16
  counterpoint study report runs/study-controls     # the report from the runs finished so far

A study runs every (condition, seed) as a normal `counterpoint run` (its own embedded cluster,
or cluster.address from the study's config), then writes <out>/report/: summary.md, summary.json,
report.html and the PNGs. docs/studies.md describes the YAML and the verdicts.
"""


def register(sub: argparse._SubParsersAction) -> None:
    study = sub.add_parser(
        "study",
        help="run a built-in or own study (conditions × seeds) and report its verdicts",
        description="Named, reproducible studies: several runs, their intervals over seeds, verdicts on claims.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = study.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    verbs.add_parser("list", help="the shipped studies")
    run = verbs.add_parser("run", help="run (or resume) a study, then write its report")
    run.add_argument("study", metavar="NAME|PATH", help="a shipped study's name or a study YAML file")
    run.add_argument("--out", metavar="DIR", help="the study folder (default: runs/study-<name>)")
    run.add_argument("--seeds", type=int, nargs="+", help="other seeds than the study's")
    run.add_argument("--steps", type=int, help="other steps per run than the study's")
    run.add_argument("--only", nargs="+", metavar="CONDITION", help="run only these conditions")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field in every run, before the conditions' own overrides (repeatable)",
    )
    run.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="runs at once (each starts its own cluster; keep 1 on a machine of a few cores)",
    )
    run.add_argument("--dry-run", action="store_true", help="check the study and print its runs, run nothing")
    report = verbs.add_parser("report", help="write the report of a study folder from its finished runs")
    report.add_argument("folder", metavar="DIR")


def main_for(args: argparse.Namespace) -> int:
    from counterpoint.study.spec import StudyError, load_study, shipped_studies

    try:
        if args.study_command == "list":
            shipped = shipped_studies()
            width = max(map(len, shipped), default=0)
            for name, path in shipped.items():
                spec = load_study(str(path))
                first = spec.description.strip().splitlines()[0] if spec.description.strip() else ""
                n, k = len(spec.conditions), len(spec.seeds)
                shape = f"{n} condition{'s' * (n != 1)} × {k} seed{'s' * (k != 1)}, {spec.steps} steps"
                print(f"{name:<{width}}  {shape:<34}  {first}")
            return 0
        if args.study_command == "report":
            from counterpoint.study.report import write_study_report

            print(f"report: {write_study_report(Path(args.folder))}")
            return 0
        return _run(args)
    except StudyError as err:
        print(f"counterpoint study: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from counterpoint.study.report import write_study_report
    from counterpoint.study.runner import RunKey, StudyFolder, run_study
    from counterpoint.study.spec import StudyError, check_study, load_study, with_changes

    if args.parallel < 1:
        raise StudyError("--parallel: at least 1")
    spec = with_changes(load_study(args.study), args.steps, args.seeds, args.only, args.overrides)
    out = Path(args.out or f"runs/study-{spec.name}")
    if args.dry_run:
        check_study(spec)  # resolves every condition's config: a bad one exits 2 here
        folder = StudyFolder(out) if (out / "study.json").exists() else None
        for seed in spec.seeds:
            for cond in spec.ordered():
                state = folder.state(RunKey(cond, seed)) if folder else "fresh"
                how = (
                    "best_of: chosen after the others"
                    if spec.conditions[cond].best_of
                    else " ".join(f"{k}={v}" for k, v in spec.conditions[cond].set.items()) or "(base)"
                )
                print(f"{cond}/seed{seed} [{state}]: {how if len(how) <= 150 else how[:147] + '...'}")
        print(f"{len(spec.conditions) * len(spec.seeds)} runs of {spec.steps} steps into {out}")
        return 0
    outcome = run_study(spec, out, parallel=args.parallel)
    page = write_study_report(out)
    failed = [k for k, v in outcome.items() if v != "done"]
    print(f"report: {page}\nsummary: {page.with_name('summary.md')}")
    if failed:
        print(
            f"counterpoint study: {len(failed)} runs did not finish (failed, or waiting on one that failed): "
            f"{', '.join(failed)}; run the same command again to retry them",
            file=sys.stderr,
        )
        return 1
    return 0

"""What the run's measures of range cost per step, on the default run.

Two runs of the default config, side by side in one invocation and otherwise identical: one with
every measure off (`metrics.diversity.enabled=false`, `metrics.effective_rank_every_steps=0`, no
loggers, no report), one with the shipped defaults. It prints:

1. each measure's own time per step, read from the measured run's records (what the reward
   workers and the learner time themselves, so machine noise does not move it): the lexical and
   code measures and the sentence encoder per domain (a domain's slowest worker; pools run in
   parallel, so the step pays the slowest domain), the effective rank (amortised over the steps
   it runs on), and writing each record to TensorBoard (timed by replaying the records);
2. what the measures add to the step: the score phase waits for its slowest pool, so the
   diversity measures cost the step only what they add to that critical path (a pool that
   measures while a slower one still scores costs CPU, not wall time: the A/B ratio shows the
   rest); and the ratio of the two runs' mean step times (which also carries the machine's
   noise, several percent on a shared 2-core box).

Both runs skip the first `--warmup` steps (engine and worker warm-up). Takes about 4 minutes with
the defaults:

    python scripts/bench_metrics.py [--steps 25] [--warmup 3] [--output-dir /tmp/bench-metrics]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OFF = [
    "metrics.diversity.enabled=false",
    "metrics.effective_rank_every_steps=0",
    "metrics.report_to=[]",
    "metrics.report=false",
]
COMMON = ["run.eval_every_steps=0", "run.checkpoint_every_steps=0"]


def run(name: str, steps: int, output_dir: Path, overrides: list[str]) -> Path:
    """One `counterpoint run` of the default config; returns its run folder."""
    cmd = [sys.executable, "-m", "counterpoint", "run", "--steps", str(steps), "--output-dir", str(output_dir)]
    cmd += [a for o in [*COMMON, f"run.name={name}", *overrides] for a in ("--set", o)]
    started = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"  {name}: {time.time() - started:.0f} s", flush=True)
    return max(output_dir.glob(f"{name}-*"), key=lambda p: p.stat().st_mtime)


def train_records(folder: Path, warmup: int) -> list[dict]:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "train" and r["step"] > warmup]


def tensorboard_seconds(folder: Path, records: list[dict]) -> float:
    """Seconds per record of writing `records` to a fresh TensorBoard logger."""
    from counterpoint.trainer.loggers import TensorBoardLogger

    with tempfile.TemporaryDirectory() as tmp:
        logger = TensorBoardLogger(Path(tmp) / "tb")
        started = time.perf_counter()
        for r in records:
            logger.log(r)
        spent = time.perf_counter() - started
        logger.close()
    return spent / max(len(records), 1)


def critical_path(record: dict) -> float:
    """What the measures added to the step's score phase: the pools score in parallel, so the
    phase lasts as long as its slowest pool's scoring plus measuring; without the measures, as
    long as the slowest scoring alone."""
    domains = record["domains"].values()
    with_measures = max(m["reward_seconds"] + m.get("diversity_seconds", 0.0) for m in domains)
    return with_measures - max(m["reward_seconds"] for m in domains)


def mean(values) -> float:
    values = list(values)
    return statistics.fmean(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=3, help="first steps of each run left out")
    parser.add_argument("--output-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-metrics")
    args = parser.parse_args(argv)
    if args.steps <= args.warmup:
        parser.error(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    print(f"two default runs of {args.steps} steps (first {args.warmup} left out):", flush=True)
    off = train_records(run("metrics-off", args.steps, args.output_dir, OFF), args.warmup)
    folder = run("metrics-on", args.steps, args.output_dir, [])
    on = train_records(folder, args.warmup)

    step_off, step_on = mean(r["seconds"]["step"] for r in off), mean(r["seconds"]["step"] for r in on)
    domains = sorted(on[0]["domains"])
    rows = []
    for d in domains:
        total = mean(r["domains"][d].get("diversity_seconds", 0.0) for r in on)
        embedding = mean(r["domains"][d].get("embedding_seconds", 0.0) for r in on)
        rows.append((f"lexical + code measures, {d} workers", total - embedding))
        rows.append((f"sentence encoder (semantic), {d} workers", embedding))
    diversity = mean(r["seconds"].get("diversity", 0.0) for r in on)
    critical = mean(critical_path(r) for r in on)
    rank = mean(r["seconds"].get("effective_rank", 0.0) for r in on)
    tensorboard = tensorboard_seconds(folder, on)

    print(f"\nmean step time: {step_off:.3f} s with the measures off, {step_on:.3f} s on\n")
    print(f"{'measure':<48} {'s / step':>9} {'% of step':>10}")
    for name, seconds in rows:
        print(f"{name:<48} {seconds:>9.4f} {100 * seconds / step_on:>9.1f}%")
    added = critical + rank + tensorboard
    for name, seconds in (
        ("diversity, the slowest pool's own time", diversity),
        ("diversity added to 'score' (its critical path)", critical),
        ("effective rank, amortised (in 'update')", rank),
        ("TensorBoard, one record", tensorboard),
        ("all measures (critical path + rank + TensorBoard)", added),
    ):
        print(f"{name:<48} {seconds:>9.4f} {100 * seconds / step_on:>9.1f}%")
    print(f"\nstep time on / off: {step_on / step_off:.3f} (side by side; includes machine noise)")
    print(f"measured cost / step time without: {added / step_off:.3f} (the 10% budget is 0.100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

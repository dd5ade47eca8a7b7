"""Asynchronous rollouts against strictly on-policy training on the default run, same seeds.

Runs `counterpoint run` (the real CLI: embedded Ray, vLLM, reward actors, DeepSpeed) once per
`generation.max_staleness` value and seed, with nothing else changed, then prints per value the
held-out scores at the end (mean and 95% t-interval over seeds), the paired difference to the
first value per seed with its interval, and the median step time and wall time. Finished runs
(a summary.json in their folder) are reused, so an interrupted comparison resumes. Not a test:
it prints figures. About 4-6 minutes per run on 2 cores.

    .venv/bin/python scripts/compare_staleness.py --staleness 0 1 --seeds 0 1 2 --out runs/staleness
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from counterpoint.study.results import interval as t_interval

METRICS = {"math": "accuracy", "code": "accuracy", "creative": "reward_mean"}


def run_folder(out: Path, staleness: int, seed: int) -> Path:
    return out / f"staleness{staleness}-seed{seed}"


def run_one(out: Path, staleness: int, seed: int, extra: list[str]) -> Path:
    folder = run_folder(out, staleness, seed)
    if (folder / "summary.json").exists():
        return folder
    args = [
        f"run.seed={seed}",
        f"generation.max_staleness={staleness}",
        f"run.output_dir={out}",
        "run.name=tmp",
        *extra,
    ]
    cmd = [sys.executable, "-m", "counterpoint", "run", *[a for x in args for a in ("--set", x)]]
    print("running:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    made = max((p for p in out.glob("tmp-*") if (p / "summary.json").exists()), key=lambda p: p.stat().st_mtime)
    made.rename(folder)
    return folder


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for one value; study/results.py)."""
    iv = t_interval(values)
    return iv.mean, iv.half or 0.0


def end_scores(folder: Path) -> dict[str, float]:
    summary = json.loads((folder / "summary.json").read_text())
    out = {}
    for domain, key in METRICS.items():
        if domain in summary["eval"]:
            out[f"{domain} start"] = summary["eval"][domain]["start"][key]
            out[f"{domain} end"] = summary["eval"][domain]["end"][key]
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    steps = [r["seconds"]["step"] for r in records if r["kind"] == "train"]
    out["step seconds (median)"] = statistics.median(steps)
    out["run seconds"] = summary["seconds"]
    return out


def table(out: Path, values: list[int], seeds: list[int]) -> str:
    scores = {v: {s: end_scores(run_folder(out, v, s)) for s in seeds} for v in values}
    keys = list(next(iter(scores[values[0]].values())))
    head = "| max_staleness | " + " | ".join(keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 1)]
    for v in values:
        cells = [f"{m:.3f} ± {h:.3f}" for m, h in (interval([scores[v][s][k] for s in seeds]) for k in keys)]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    base = values[0]
    for v in values[1:]:
        cells = []
        for k in keys:
            m, h = interval([scores[v][s][k] - scores[base][s][k] for s in seeds])
            cells.append(f"{m:+.3f} ± {h:.3f}")
        lines.append(f"| {v} − {base} (paired) | " + " | ".join(cells) + " |")
    per_seed = ["", "| run | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for v in values:
        for s in seeds:
            per_seed.append(f"| {v}, seed {s} | " + " | ".join(f"{scores[v][s][k]:.3f}" for k in keys) + " |")
    return "\n".join(lines + per_seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--staleness", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/staleness"))
    parser.add_argument("--set", dest="extra", action="append", default=[], help="another override for every run")
    parser.add_argument("--table-only", action="store_true", help="print the table of the runs already there")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for seed in args.seeds:
            for v in args.staleness:
                run_one(args.out, v, seed, args.extra)
    print(table(args.out, args.staleness, args.seeds))


if __name__ == "__main__":
    main()

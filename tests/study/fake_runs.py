"""Fakes for the study tests: run folders with the files a finished `counterpoint run` writes,
and a launcher that makes them instead of training (pure logic only; the real path is
tests/cluster/test_study.py)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def write_run(
    path: Path,
    *,
    steps: int = 10,
    seed: int = 0,
    start: dict | None = None,
    end: dict | None = None,
    entropy: dict[str, tuple[float, float]] | None = None,
    law_error: dict | None = None,
    transfer: dict | None = None,
    finished: bool = True,
) -> Path:
    """A run folder: evals at step 0 and `steps` (`start`/`end`: domain -> eval figures), one
    train record per step whose entropy goes linearly from `entropy[d][0]` to `entropy[d][1]`."""
    path.mkdir(parents=True, exist_ok=True)
    start = start or {"math": {"accuracy": 0.4, "reward_mean": 0.4, "pass@1": 0.4, "pass@4": 0.6, "distinct_2": 0.5}}
    end = end or start
    entropy = entropy or {d: (0.5, 0.5) for d in start}
    records = [{"kind": "eval", "step": 0, "domains": start}]
    for step in range(1, steps + 1):
        f = (step - 1) / max(1, steps - 1)
        records.append(
            {
                "kind": "train",
                "step": step,
                "domains": {
                    d: {"samples": 8, "entropy_mean": a + (b - a) * f, "reward_mean": 0.5, "distinct_2": 0.5}
                    for d, (a, b) in entropy.items()
                },
            }
        )
    records.append({"kind": "eval", "step": steps, "domains": end})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "config.json").write_text(json.dumps({"run": {"seed": seed}}))
    if finished:
        summary = {
            "seconds": 12.5,
            "eval": {},
            "entropy_law": {d: {"holdout": {"mean_abs_error": e}} for d, e in (law_error or {}).items()},
            "transfer": transfer,
        }
        (path / "summary.json").write_text(json.dumps(summary))
    return path


class FakeLauncher:
    """Stands in for `counterpoint run`: reads the config the study wrote and makes a finished run
    folder whose creative distinct-2 is `distinct(config)`. `fail` names runs (condition/seedK)
    that exit 1 without a summary; `calls` records every command."""

    def __init__(self, distinct=None, math=None, fail=()):
        self.calls: list[list[str]] = []
        self.distinct = distinct or (lambda cfg: 0.3)
        self.math = math or (lambda cfg: 0.4)
        self.fail = set(fail)

    def __call__(self, cmd: list[str], log_path: Path) -> int:
        self.calls.append(cmd)
        if "--resume" in cmd:
            run_dir = Path(cmd[cmd.index("--resume") + 1])
            cfg = yaml.safe_load((run_dir.parent / f"{run_dir.name}.yaml").read_text())
        else:
            run_dir = Path(cmd[cmd.index("--run-dir") + 1])
            cfg = yaml.safe_load(Path(cmd[cmd.index("--config") + 1]).read_text())
        label = f"{run_dir.parent.name}/{run_dir.name}"
        log_path.write_text(f"fake run of {label}\n")
        seed = cfg["run"]["seed"]
        if label in self.fail:
            write_run(run_dir, seed=seed, finished=False)
            return 1
        start = {"math": {"accuracy": 0.4, "reward_mean": 0.4}, "creative": {"reward_mean": 0.7, "distinct_2": 0.8}}
        end = {
            "math": {"accuracy": self.math(cfg) + 0.01 * seed, "reward_mean": 0.5},
            "creative": {"reward_mean": 0.9, "distinct_2": self.distinct(cfg) + 0.01 * seed},
        }
        write_run(
            run_dir,
            steps=cfg["run"]["steps"],
            seed=seed,
            start=start,
            end=end,
            entropy={"math": (0.5, 0.3), "creative": (0.9, 0.9)},
            law_error={"math": 0.02 + 0.01 * seed},
            transfer={"bwt": {"math": -0.05, "creative": None}, "bwt_mean": -0.05},
        )
        return 0

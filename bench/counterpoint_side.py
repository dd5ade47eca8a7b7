"""The Counterpoint side of the benchmark: the real `counterpoint run` CLI on a bench model folder
(project venv).

    python bench/counterpoint_side.py --model DIR --data DIR --json OUT [--steps 18] [--set KEY=VALUE ...]

Writes the run's config from bench/counterpoint.yaml (model.path, the data files and
run.output_dir filled in), validates it with `counterpoint config`, runs `counterpoint run
--config FILE --set ...` in a work folder with bench/ on PYTHONPATH (where the `python` domain's
reward, arith_reward:counterpoint_reward, is imported from) and collects:
- per-step seconds and phases from runs/<id>/metrics.jsonl (`kind: train` records' `seconds`);
- the time from the CLI process's start to the moment the first train record was written to
  metrics.jsonl (metrics records carry no timestamp: the file is polled every 0.2 s and a new
  record's time is the file's modification time), and the wall between consecutive train records,
  taken the same way;
- the peak summed RSS of the driver and all its descendants (procmon.py).

By default the working tree's code runs (the project's editable install). `--ref REV` runs the code
of commit REV instead: `git archive REV` unpacked under bench/out/trees/<sha>/ and laid out as the
installed package (`counterpoint`, its cluster/rollout/trainer/services subpackages), first on
PYTHONPATH, so the driver and every Ray actor import it rather than the editable install. Nothing
in the repository is written.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from procmon import run_watched  # noqa: E402

BASE_CONFIG = BENCH / "counterpoint.yaml"
CLI = Path(sys.executable).parent / "counterpoint"


def write_config(model_dir: Path, data_dir: Path, work_dir: Path, steps: int) -> Path:
    cfg = yaml.safe_load(BASE_CONFIG.read_text())
    cfg["run"]["steps"] = steps
    cfg["run"]["output_dir"] = str(work_dir / "runs")
    cfg["model"]["path"] = str(model_dir)
    source = cfg["domains"]["arith"]["source"]
    source["path"] = str(data_dir / "prompts.jsonl")
    source["eval"]["path"] = str(data_dir / "eval.jsonl")
    path = work_dir / "counterpoint.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


REPO = BENCH.parent
SUBPACKAGES = ("cluster", "rollout", "trainer", "services")
"""Top-level folders installed as counterpoint.<name> (pyproject's package-dir)."""


def code_state(ref: str | None) -> dict:
    """Which Counterpoint code a run measures: a commit, or the working tree (HEAD + changed files)."""
    git = ["git", "-C", str(REPO)]
    if ref is not None:
        sha = subprocess.run([*git, "rev-parse", "--verify", f"{ref}^{{commit}}"], capture_output=True, text=True)
        if sha.returncode != 0:
            raise SystemExit(f"--ref {ref}: not a commit ({sha.stderr.strip()})")
        return {"code": "commit", "ref": ref, "commit": sha.stdout.strip()}
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout.splitlines()
    changed = [line[3:] for line in status if not line[3:].startswith("bench/")]
    return {"code": "working tree", "commit": head or None, "changed_files": changed}


def package_tree(commit: str) -> Path:
    """The package as of `commit`, laid out to import: <tree>/pkg/counterpoint/... (built once)."""
    tree = BENCH / "out" / "trees" / commit[:12]
    pkg = tree / "pkg"
    if (pkg / "counterpoint" / "__init__.py").is_file():
        return pkg
    shutil.rmtree(tree, ignore_errors=True)
    src = tree / "src"
    src.mkdir(parents=True)
    git_archive = ["git", "-C", str(REPO), "archive", "--format=tar", commit]
    archive = subprocess.run(git_archive, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(src, filter="data")
    shutil.copytree(src / "src" / "counterpoint", pkg / "counterpoint")
    for name in SUBPACKAGES:
        (pkg / "counterpoint" / name).symlink_to(src / name, target_is_directory=True)
    return pkg


def environment(pkg: Path | None = None) -> dict:
    env = dict(os.environ)
    first = [str(pkg)] if pkg is not None else []
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*first, str(BENCH), env.get("PYTHONPATH")]))
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def imported_from(env: dict) -> str:
    """Where `counterpoint` imports from under `env` (a check that --ref took effect)."""
    code = "import counterpoint.trainer.loop as m; print(m.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return proc.stdout.strip()


def validate(config: Path, sets: list[str], env: dict) -> dict:
    """`counterpoint config` on the written config: exit 2 names a bad field."""
    cmd = [str(CLI), "config", "--config", str(config), *[a for s in sets for a in ("--set", s)]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=config.parent, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"counterpoint config rejected {config}:\n{proc.stderr or proc.stdout}")
    return json.loads(proc.stdout)


class MetricsWatcher:
    """Polls <output_dir>/*/metrics.jsonl and notes when each train record first appeared."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = runs_dir
        self.path: Path | None = None
        self.size = 0
        self.lines = 0
        self.train_seen: list[float] = []

    def __call__(self) -> None:
        if self.path is None:
            found = sorted(self.runs_dir.glob("*/metrics.jsonl"))
            if not found:
                return
            self.path = found[0]
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        if stat.st_size == self.size:
            return
        # the file's modification time is when its last record was written (exact while a poll
        # sees one new record at a time, as it does with steps longer than the 0.2 s poll)
        now = stat.st_mtime
        text = self.path.read_text()
        complete = text[: text.rfind("\n") + 1].splitlines()
        for line in complete[self.lines :]:
            if line.strip() and json.loads(line).get("kind") == "train":
                self.train_seen.append(now)
        self.lines, self.size = len(complete), stat.st_size


def run(
    model_dir: Path, data_dir: Path, work_dir: Path, steps: int = 18, sets: list[str] = (), ref: str | None = None
) -> dict:
    work_dir.mkdir(parents=True, exist_ok=True)
    config = write_config(model_dir, data_dir, work_dir, steps)
    code = code_state(ref)
    env = environment(package_tree(code["commit"]) if ref is not None else None)
    code["imported_from"] = imported_from(env)
    resolved = validate(config, list(sets), env)
    watcher = MetricsWatcher(work_dir / "runs")
    cmd = [str(CLI), "run", "--config", str(config), *[a for s in sets for a in ("--set", s)]]
    watched = run_watched(cmd, cwd=work_dir, env=env, log_path=work_dir / "counterpoint.log", on_poll=watcher)
    log_tail = (work_dir / "counterpoint.log").read_text(errors="replace").splitlines()[-30:]
    if watched["rc"] != 0 or watcher.path is None:
        where = f"{work_dir}/counterpoint.log"
        raise RuntimeError(f"counterpoint run exited {watched['rc']}; log {where}:\n" + "\n".join(log_tail))
    run_dir = watcher.path.parent
    records = [json.loads(line) for line in watcher.path.read_text().splitlines() if line.strip()]
    train = [r for r in records if r.get("kind") == "train"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    components = next((e for e in events if e.get("event") == "components"), None)
    seen = watcher.train_seen
    gen = resolved["generation"]
    return {
        "system": "counterpoint",
        "model": str(model_dir),
        "run_dir": str(run_dir),
        "command": cmd,
        "sets": list(sets),
        "code": code,
        "learner_ranks": resolved["learner"]["ranks"],
        "completions_per_step": gen["prompts_per_step"] * gen["samples_per_prompt"],
        "step_seconds": [r["seconds"]["step"] for r in train],
        "phase_seconds": [r["seconds"] for r in train],
        "step_interval_seconds": [round(b - a, 3) for a, b in zip(seen, seen[1:])],
        "response_length_mean": [r["domains"]["arith"].get("response_length_mean") for r in train],
        "reward_mean": [r["domains"]["arith"].get("reward_mean") for r in train],
        "time_to_first_step_seconds": round(seen[0] - watched["start"], 3) if seen else None,
        "total_seconds": watched["wall_seconds"],
        "peak_tree_rss_mib": watched["peak_tree_rss_mib"],
        "peak_processes": watched["peak_processes"],
        "tree_cpu_seconds": watched["tree_cpu_seconds"],
        "other_cpu_seconds": watched["other_cpu_seconds"],
        "load_average_1m": watched["load_average_1m"],
        "components": components,
        "log_tail": log_tail[-6:],
    }


def run_default(work_dir: Path, steps: int = 5, sets: list[str] = (), ref: str | None = None) -> dict:
    """The project's default run (`counterpoint run`, its built-in tiny model, math, code and
    creative), cut to `steps` steps: its time to the first step (start-up, the step-0
    evaluation and step 1) and the peak memory of its process tree."""
    work_dir.mkdir(parents=True, exist_ok=True)
    code = code_state(ref)
    env = environment(package_tree(code["commit"]) if ref is not None else None)
    code["imported_from"] = imported_from(env)
    watcher = MetricsWatcher(work_dir / "runs")
    overrides = [f"run.steps={steps}", f"run.output_dir={work_dir / 'runs'}", "metrics.report=false", *sets]
    cmd = [str(CLI), "run", *[a for s in overrides for a in ("--set", s)]]
    watched = run_watched(cmd, cwd=work_dir, env=env, log_path=work_dir / "counterpoint.log", on_poll=watcher)
    if watched["rc"] != 0 or not watcher.train_seen:
        tail = (work_dir / "counterpoint.log").read_text(errors="replace").splitlines()[-30:]
        raise RuntimeError(f"the default run exited {watched['rc']}:\n" + "\n".join(tail))
    return {
        "system": "counterpoint default run",
        "command": cmd,
        "code": code,
        "time_to_first_step_seconds": round(watcher.train_seen[0] - watched["start"], 3),
        "peak_tree_rss_mib": watched["peak_tree_rss_mib"],
        "total_seconds": watched["wall_seconds"],
        "other_cpu_seconds": watched["other_cpu_seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="a bench model folder (bench/models.py)")
    ap.add_argument("--data", type=Path, required=True, help="the folder with prompts.jsonl and eval.jsonl")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--work-dir", type=Path, default=None, help="default: bench/out/cp-<time>")
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--ref", default=None, help="run the Counterpoint code of this commit (default: the working tree)")
    args = ap.parse_args()
    work = args.work_dir or BENCH / "out" / f"cp-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run(args.model.resolve(), args.data.resolve(), work.resolve(), args.steps, args.sets, args.ref)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    steps = sorted(result["step_seconds"])
    print(f"counterpoint: median step {steps[len(steps) // 2]:.3f}s -> {args.json}")


if __name__ == "__main__":
    main()

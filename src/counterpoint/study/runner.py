"""Run a study: every (condition, seed) as a normal `counterpoint run` on its own embedded
cluster, one after another (or `parallel` at once), into one study folder that a second
`counterpoint study run` resumes.

<study folder>/
  study.json                 the spec it runs (a folder holds one spec and refuses another)
  status.json                per run: state, attempts, exit status, seconds
  best.json                  how each `best_of` condition was resolved, and the figures behind it
  runs/<condition>/seed<k>/  the run folders (config.json, metrics.jsonl, summary.json, ...)
  runs/<condition>/seed<k>.yaml, .log   the config each run was started with, and its output
  report/                    summary.md, summary.json, report.html and its PNGs (study/report.py)

A finished run (summary.json) is kept; a run stopped after a checkpoint continues from it
(`counterpoint run --resume`); a run stopped before its first checkpoint is moved aside to
`seed<k>.failed-<n>/` (nothing is deleted) and started again.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from counterpoint.study.results import RunResult, interval, load_run, paired, values
from counterpoint.study.spec import StudyError, StudySpec, check_study, fingerprint, parse_study, run_config_data

log = logging.getLogger(__name__)

Launcher = Callable[[list[str], Path], int]
"""Runs one command with its output to a log file; returns its exit status."""


def subprocess_launcher(cmd: list[str], log_path: Path) -> int:
    """The real launcher: the command as a child process. Ctrl-C or SIGTERM here stops the child
    with SIGTERM (a run then records its stop and shuts its own Ray cluster down) before it
    propagates."""
    with open(log_path, "ab") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return child.wait()
        except BaseException:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            raise


@dataclass(frozen=True)
class RunKey:
    condition: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.condition}/seed{self.seed}"


class StudyFolder:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def run_dir(self, key: RunKey) -> Path:
        return self.path / "runs" / key.condition / f"seed{key.seed}"

    def spec(self) -> StudySpec:
        data = json.loads((self.path / "study.json").read_text())
        return parse_study(data["spec"], Path(data["base_dir"]) if data.get("base_dir") else None)

    def claim(self, spec: StudySpec) -> None:
        """Make this the folder of `spec`, or check that it already is (a spec that differs only in
        its descriptions or claims replaces the stored one: the runs are the same)."""
        marker = self.path / "study.json"
        if marker.exists():
            held = json.loads(marker.read_text())
            if fingerprint(held["spec"]) != spec.fingerprint():
                raise StudyError(
                    f"{self.path} holds another version of study {held['spec'].get('name')!r} (other steps, seeds, "
                    "conditions or overrides); run it with the same arguments to resume, or give a new --out"
                )
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(marker, {"spec": spec.model_dump(mode="json"), "base_dir": spec.base_dir})

    def status(self) -> dict:
        path = self.path / "status.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def set_status(self, key: RunKey, **fields) -> None:
        with self._lock:
            status = self.status()
            status.setdefault(key.label, {}).update(fields)
            _write_json(self.path / "status.json", status)

    def state(self, key: RunKey) -> str:
        """done | resumable | fresh (nothing usable yet)."""
        d = self.run_dir(key)
        if (d / "summary.json").exists():
            return "done"
        if (d / "checkpoint" / "driver_state.json").exists() or (d / "checkpoint.old" / "driver_state.json").exists():
            return "resumable"
        return "fresh"

    def best(self) -> dict:
        path = self.path / "best.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def results(self, spec: StudySpec) -> dict[str, list[RunResult]]:
        """condition -> the finished runs' figures, by seed."""
        out: dict[str, list[RunResult]] = {}
        for cond in spec.ordered():
            for seed in spec.seeds:
                key = RunKey(cond, seed)
                if self.state(key) == "done":
                    out.setdefault(cond, []).append(load_run(cond, seed, self.run_dir(key)))
        return out


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def resolve_best(spec: StudySpec, condition: str, runs: dict[str, list[RunResult]]) -> dict:
    """Pick the candidate of a `best_of` condition: the highest mean score over seeds among those
    whose `keep_within` metric's mean paired difference to `of` is at least −points; when none
    is, the highest score, said so in `reason`."""
    best = spec.conditions[condition].best_of
    table = {}
    for cand in best.conditions:
        score = interval(list(values(runs.get(cand, []), best.score).values()))
        row = {"score": score.mean if score else None}
        if best.keep_within:
            diff = interval(
                list(paired(runs.get(cand, []), runs.get(best.keep_within.of, []), best.keep_within.metric).values())
            )
            row["difference"] = diff.mean if diff else None
            row["within"] = diff is not None and diff.mean >= -best.keep_within.points
        table[cand] = row
    scored = {c: r for c, r in table.items() if r["score"] is not None}
    if not scored:
        raise StudyError(f"conditions.{condition}.best_of: no candidate has {best.score} measured")
    eligible = {c: r for c, r in scored.items() if r.get("within", True)}
    pool = eligible or scored
    picked = max(pool, key=lambda c: pool[c]["score"])
    if eligible:
        reason = f"highest mean {best.score}" + (
            f" among those within {best.keep_within.points:g} of {best.keep_within.of} on {best.keep_within.metric}"
            if best.keep_within
            else ""
        )
    else:
        within = best.keep_within
        reason = f"highest mean {best.score}; no candidate stayed within {within.points:g} on {within.metric}"
    return {"picked": picked, "reason": reason, "candidates": table}


def run_study(
    spec: StudySpec,
    out: Path,
    *,
    parallel: int = 1,
    launcher: Launcher = subprocess_launcher,
    python: str = sys.executable,
    on_progress: Callable[[str], None] = print,
) -> dict[str, str]:
    """Run every pending (condition, seed) of `spec` into `out`; returns each run's final state:
    done, failed, or blocked (a `best_of` condition whose candidates have not all finished).
    Runs that are already done are kept."""
    check_study(spec)
    folder = StudyFolder(out)
    folder.claim(spec)
    outcome: dict[str, str] = {}
    plain = [RunKey(c, s) for s in spec.seeds for c in spec.ordered() if not spec.conditions[c].best_of]
    _run_batch(spec, folder, plain, {}, parallel, launcher, python, on_progress, outcome)
    chosen = {}
    best = folder.best()
    for cond in (c for c in spec.ordered() if spec.conditions[c].best_of):
        if cond not in best:
            needed = spec.conditions[cond].best_of.needs()
            missing = [k.label for k in plain if k.condition in needed and outcome.get(k.label) != "done"]
            if missing:  # chosen only on complete figures, so a later run of the study cannot choose otherwise
                on_progress(f"{cond}: not started; it chooses once these have finished: {', '.join(missing)}")
                outcome.update({RunKey(cond, s).label: "blocked" for s in spec.seeds})
                continue
            best[cond] = resolve_best(spec, cond, folder.results(spec))
            _write_json(out / "best.json", best)
        chosen[cond] = best[cond]["picked"]
        on_progress(f"{cond}: {best[cond]['picked']} ({best[cond]['reason']})")
    keys = [RunKey(c, s) for s in spec.seeds for c in chosen]
    _run_batch(spec, folder, keys, chosen, parallel, launcher, python, on_progress, outcome)
    return outcome


def _run_batch(spec, folder, keys, chosen, parallel, launcher, python, on_progress, outcome) -> None:
    total = len(keys)
    todo = [(i, k) for i, k in enumerate(keys, 1) if folder.state(k) != "done"]
    for k in keys:
        if folder.state(k) == "done":
            outcome[k.label] = "done"
    if parallel <= 1:
        for i, key in todo:
            outcome[key.label] = run_one(spec, folder, key, chosen, launcher, python, on_progress, f"[{i}/{total}]")
        return
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {
            key.label: pool.submit(run_one, spec, folder, key, chosen, launcher, python, on_progress, f"[{i}/{total}]")
            for i, key in todo
        }
        for label, fut in futures.items():
            outcome[label] = fut.result()


def run_one(
    spec: StudySpec,
    folder: StudyFolder,
    key: RunKey,
    chosen: dict,
    launcher: Launcher,
    python: str,
    on_progress: Callable[[str], None],
    prefix: str = "",
) -> str:
    """One (condition, seed) run: started, resumed or restarted as its folder says."""
    run_dir = folder.run_dir(key)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir.parent / f"seed{key.seed}.yaml"
    log_path = run_dir.parent / f"seed{key.seed}.log"
    state = folder.state(key)
    if state == "resumable":
        cmd = [python, "-m", "counterpoint", "run", "--resume", str(run_dir), "-q"]
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            n = 1
            while (aside := run_dir.with_name(f"{run_dir.name}.failed-{n}")).exists():
                n += 1
            run_dir.rename(aside)
            on_progress(
                f"{prefix} {key.label}: an earlier attempt stopped before its first checkpoint; kept in {aside}"
            )
        cfg_path.write_text(yaml.safe_dump(run_config_data(spec, key.condition, key.seed, chosen), sort_keys=False))
        cmd = [python, "-m", "counterpoint", "run", "--config", str(cfg_path), "--run-dir", str(run_dir), "-q"]
    attempts = folder.status().get(key.label, {}).get("attempts", 0) + 1
    folder.set_status(key, state="running", attempts=attempts, command=cmd)
    on_progress(f"{prefix} {key.label}: {'resuming' if state == 'resumable' else 'starting'}")
    started = time.time()
    code = launcher(cmd, log_path)
    seconds = round(time.time() - started, 1)
    done = code == 0 and folder.state(key) == "done"
    folder.set_status(key, state="done" if done else "failed", exit_status=code, seconds=seconds)
    if done:
        r = load_run(key.condition, key.seed, run_dir)
        figures = ", ".join(
            f"{m} {r.end[m]:.3f}" for m in ("math.accuracy", "code.accuracy", "creative.distinct_2") if m in r.end
        )
        on_progress(f"{prefix} {key.label}: done in {seconds:.0f} s ({figures})")
    else:
        on_progress(f"{prefix} {key.label}: FAILED (exit status {code}); its output is in {log_path}")
    return "done" if done else "failed"

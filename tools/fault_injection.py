"""Fault injection on a live run: kill and SIGSTOP each kind of actor while it trains, then resume.

What it really does: starts a small real run (embedded Ray, a vLLM engine, reward actors, two
DeepSpeed ranks) in this process and, from a second thread, at chosen steps, kills or stops
(SIGSTOP) the rollout engine, a reward worker and a learner rank, by their Ray actor names and
the PIDs they report. Hung actors are found by the run's call timeouts (`cluster.timeouts`, set
short here). When the run has finished it is resumed for a few more steps. Then it checks
metrics.jsonl (every step exactly once, in order) and events.jsonl (a recovery for every fault)
and prints both. Not a test; tests/cluster/test_hung_actors.py runs its SIGSTOP part.

    .venv/bin/python tools/fault_injection.py --out runs/faults
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FAULT_SETTINGS = [
    "run.checkpoint_every_steps=2",
    "run.max_restarts=3",
    "cluster.timeouts.generate_seconds=10",
    "cluster.timeouts.weights_seconds=10",
    "cluster.timeouts.reward_seconds=10",
    "cluster.timeouts.learner_seconds=20",
]
"""On top of the shipped smoke config: a checkpoint every 2 steps, room for the learner failures,
and short call timeouts so a stopped actor is found in seconds."""


@dataclass(frozen=True)
class Fault:
    at_step: int
    """Injected once the run has logged this many steps."""
    actor: str
    """The actor's name after `counterpoint-<run_id>-`, e.g. "rollout-0", "reward-math-0", "learner-1"."""
    how: str
    """"kill" (the process dies; Ray restarts it) or "stop" (SIGSTOP: it hangs)."""


KILL_AND_STOP = [
    Fault(2, "rollout-0", "kill"),
    Fault(4, "rollout-0", "stop"),
    Fault(6, "reward-math-0", "kill"),
    Fault(8, "reward-math-0", "stop"),
    Fault(10, "learner-1", "kill"),
    Fault(12, "learner-1", "stop"),
]
STOP_ONLY = [f for f in KILL_AND_STOP if f.how == "stop"]


def steps_logged(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return 0
    steps = [json.loads(line).get("step", 0) for line in path.read_text().splitlines() if '"train"' in line]
    return max(steps, default=0)


def _retry(call: Callable, seconds: float = 180.0):
    """`call()` until it works: while a learner failure restarts the run, its actors come and go."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def actor_pid(name: str) -> int:
    import ray

    handle = ray.get_actor(name)
    return ray.get(handle.__ray_call__.remote(lambda _self: os.getpid()), timeout=30)


def inject(run_dir: Path, run_id: str, faults: list[Fault], done: threading.Event, log: list) -> None:
    """The injecting thread: each fault once its step is logged."""
    import ray

    for fault in faults:
        while steps_logged(run_dir) < fault.at_step and not done.is_set():
            time.sleep(0.2)
        if done.is_set():
            return
        name = f"counterpoint-{run_id}-{fault.actor}"
        pid = _retry(lambda name=name: actor_pid(name))
        if fault.how == "kill":
            _retry(lambda name=name: ray.kill(ray.get_actor(name), no_restart=False))
        else:
            os.kill(pid, signal.SIGSTOP)
        log.append({"step": steps_logged(run_dir), "actor": fault.actor, "how": fault.how, "pid": pid})
        logging.info("fault: %s %s (pid %d) after step %d", fault.how, fault.actor, pid, fault.at_step)


def run_with_faults(out: Path, faults: list[Fault], *, steps: int, resume_steps: int, extra: list[str] = ()) -> dict:
    """Train `steps` steps under `faults`, then resume to `steps + resume_steps`; returns what
    the run folder says: the steps logged, the fault and recovery events, the faults injected."""
    from counterpoint.cluster.launch import resume_config, run_training
    from counterpoint.config import load_config
    from counterpoint.trainer.run_folder import RunFolder

    cfg = load_config("smoke", overrides=[*FAULT_SETTINGS, f"run.steps={steps}", f"run.output_dir={out}", *extra])
    run = RunFolder(out / "faults")
    done, injected = threading.Event(), []
    thread = threading.Thread(target=inject, args=(run.path, run.run_id, faults, done, injected), daemon=True)
    thread.start()
    try:
        run_training(cfg, run)
    finally:
        done.set()
        thread.join(timeout=60)
    run_training(resume_config(run.path, [f"run.steps={steps + resume_steps}"]), run, resume=True)
    records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    events = [json.loads(line) for line in (run.path / "events.jsonl").read_text().splitlines()]
    faults_seen = [
        e
        for e in events
        if e["event"] in ("actor_hung", "actor_recovered", "engine_reloaded", "learner_failed", "resume", "checkpoint")
    ]
    return {
        "steps": [r["step"] for r in records if r["kind"] == "train"],
        "events": faults_seen,
        "injected": injected,
        "run_dir": str(run.path),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/faults"))
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--resume-steps", type=int, default=4)
    parser.add_argument("--stop-only", action="store_true", help="only the SIGSTOP faults")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    started = time.time()
    result = run_with_faults(
        args.out, STOP_ONLY if args.stop_only else KILL_AND_STOP, steps=args.steps, resume_steps=args.resume_steps
    )
    expected = list(range(1, args.steps + args.resume_steps + 1))
    print(f"\nrun folder: {result['run_dir']} ({time.time() - started:.0f} s)")
    print("faults injected:")
    for f in result["injected"]:
        print(f"  after step {f['step']:>2}: {f['how']:<4} {f['actor']} (pid {f['pid']})")
    print("events (faults, recoveries, checkpoints, resume):")
    for e in result["events"]:
        fields = {k: v for k, v in e.items() if k not in ("event", "time")}
        print(f"  {e['event']:<16} {json.dumps(fields)}")
    ok = result["steps"] == expected
    print(f"steps in metrics.jsonl: {result['steps']}")
    print(f"every step exactly once, in order: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

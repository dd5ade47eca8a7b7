"""Checkpoints of a run: the learner (DeepSpeed, every rank) and the driver's state, swapped in
atomically so a crash mid-save never leaves a half checkpoint where a good one was.

runs/<id>/checkpoint/
  learner/             DeepSpeed: weights, optimizer state, client state
  driver_state.json    step, policy version, task cursors, entropy controllers, RNG
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from counterpoint.trainer.run_folder import RunFolder

CHECKPOINT = "checkpoint"


def save_checkpoint(run: RunFolder, learner, state: dict) -> Path:
    final = run.path / CHECKPOINT
    partial = run.path / (CHECKPOINT + ".partial")
    old = run.path / (CHECKPOINT + ".old")
    shutil.rmtree(partial, ignore_errors=True)
    learner.save_checkpoint(partial / "learner", {"driver": state})
    (partial / "driver_state.json").write_text(json.dumps(state))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(partial, final)
    shutil.rmtree(old, ignore_errors=True)
    run.event("checkpoint", step=state["step"], policy_version=state["policy_version"])
    return final


def load_driver_state(run: RunFolder) -> dict:
    """The driver state of the last complete checkpoint (a `.old` one survives a crash mid-swap)."""
    for name in (CHECKPOINT, CHECKPOINT + ".old"):
        path = run.path / name / "driver_state.json"
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError(f"{run.path} has no checkpoint to resume from (no {CHECKPOINT}/driver_state.json)")


def checkpoint_dir(run: RunFolder) -> Path:
    for name in (CHECKPOINT, CHECKPOINT + ".old"):
        if (run.path / name / "driver_state.json").exists():
            return run.path / name
    raise FileNotFoundError(f"{run.path} has no checkpoint")

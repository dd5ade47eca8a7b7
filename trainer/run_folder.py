"""The run folder a person reads: resolved config, per-step metrics, events, summary, checkpoints.

runs/<run_id>/
  config.json        the resolved config
  metrics.jsonl      one line per step (and one per evaluation), per-domain figures inside
  events.jsonl       start, components, evaluations, checkpoints, errors
  summary.json       written at the end
  checkpoint/        learner (DeepSpeed) + driver state (step, cursors, RNG); see checkpoint.py
  final_model/       the trained policy as a Hugging Face model folder
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path


class RunFolder:
    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.logger = None
        """A `trainer.loggers.MetricsLogger` (TensorBoard, W&B, MLflow) fed every metrics record
        after it is written here; None: only the JSONL file."""

    @classmethod
    def create(cls, output_dir: Path, name: str) -> RunFolder:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = output_dir / f"{name}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = output_dir / f"{name}-{stamp}-{suffix}"
        return cls(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def write_json(self, name: str, data) -> Path:
        """Atomic write: a reader never sees half a file, a crash never leaves one."""
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, target)
        return target

    def append(self, name: str, record: dict) -> None:
        with open(self.path / name, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
            f.flush()

    def log_metrics(self, record: dict) -> None:
        self.append("metrics.jsonl", record)
        if self.logger is not None:
            self.logger.log(record)

    def event(self, kind: str, **fields) -> None:
        self.append("events.jsonl", {"time": time.time(), "event": kind, **fields})

    def truncate_metrics(self, last_step: int) -> int:
        """Drop records past `last_step` (written after the checkpoint a resume starts from), so
        resumed metrics continue without duplicated steps. Returns how many were dropped."""
        records = self.read_metrics()
        keep = [r for r in records if r["step"] <= last_step]
        if len(keep) != len(records):
            tmp = self.path / "metrics.jsonl.tmp"
            tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in keep))
            os.replace(tmp, self.path / "metrics.jsonl")
        return len(records) - len(keep)

    def read(self, name: str) -> list[dict]:
        """The records of one of the folder's JSONL files (none if it does not exist yet)."""
        path = self.path / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def read_events(self) -> list[dict]:
        return self.read("events.jsonl")

    def read_metrics(self) -> list[dict]:
        return self.read("metrics.jsonl")

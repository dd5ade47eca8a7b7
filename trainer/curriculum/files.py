"""The controller's files in a run folder, and how they are written and read back safely while
other processes use them.

- `controller.json` is rewritten whole after every change: `atomic_write_json` makes a reader see
  the old file or the new one, never half of one; `read_save_id` reads the random id at its head,
  by which a process tells whether another one saved since it last read the file.
- `controller_metrics.jsonl` gets one line per reported step: `MetricsLog` appends them and tails
  the file, so every process that opens the run folder sees the lines the others appended;
  `clean_metrics` keeps what a line can hold (scalars, JSON has no NaN).

The controller (controller.py) decides which files a run folder has and holds the lock that
serialises the processes using them; this module only does the file work. Standard library only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def atomic_write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON so a reader sees the old file or the new one, never half of one,
    and a crash after return cannot lose it (fsync of the file and of its folder)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_save_id(path: Path) -> str | None:
    """The save id at the head of controller.json (a random id per save, so unlike a file's
    mtime it cannot repeat), or None when the file or the id cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(96)
    except FileNotFoundError:
        return None
    found = re.search(rb'"save_id": "([0-9a-f]{32})"', head)
    return found.group(1).decode() if found else None


class MetricsLog:
    """The records of a metrics file by step, kept current by reading only what was appended
    since the last read. The caller holds the run folder's lock around every call."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[int, dict] = {}
        self._offset = 0
        """Bytes of the file already read: everything before it is in `records`."""

    def append(self, record: dict) -> None:
        """Write one step's record (its "step" an int) as a line, and keep it."""
        with open(self.path, "a") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")
        self.records[record["step"]] = record
        self._offset = self.path.stat().st_size

    def read_new(self) -> None:
        """Take in the complete lines appended since the last read (by any process)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written (or torn by a crash) is left for later
        for line in chunk[:end].splitlines():
            try:
                record = json.loads(line)
                self.records[int(record["step"])] = record
            except (ValueError, KeyError, TypeError):
                log.warning("%s: skipped an unreadable metrics line", self.path)
        self._offset += end


def clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float | int | bool | None]:
    """Keep scalar metrics; non-finite numbers become None (JSON has no NaN), other values are dropped."""
    out: dict[str, float | int | bool | None] = {}
    for key, value in metrics.items():
        if value is None or isinstance(value, bool):
            out[str(key)] = value
        elif isinstance(value, int | float):
            out[str(key)] = value if math.isfinite(value) else None
        elif hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
            try:
                v = float(value.item())
            except (TypeError, ValueError):
                continue
            out[str(key)] = v if math.isfinite(v) else None
    return out

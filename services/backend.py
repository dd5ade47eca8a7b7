"""Where the control plane finds runs and their schedule controllers.

`Backend` is what the REST app needs; `LocalBackend` serves every run folder under a directory
that holds a controller.json. That file is the schedule's single source of truth: the driver of
a run opens a `ScheduleController` on the same folder, and the two are kept consistent by the
controller's file lock. In a cluster the control plane mounts the runs volume the drivers write
to (docs/deployment.md), so this one backend serves there too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from counterpoint.trainer.curriculum.controller import STATE_FILE, ScheduleController
from counterpoint.trainer.curriculum.stages import Stage

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class RunNotFound(LookupError):
    """No run with this id (HTTP 404)."""

    def __init__(self, run_id: str):
        super().__init__(f"no run {run_id!r}")
        self.run_id = run_id

    def __reduce__(self):
        return type(self), (self.run_id,)


class BackendUnavailable(RuntimeError):
    """The controller cannot be reached right now (HTTP 503): a dead actor, an unreadable folder."""


class Controller(Protocol):
    """The ScheduleController methods the app calls (a Ray actor proxy offers the same)."""

    def status(self) -> dict: ...
    def get_schedule(self, version: int | None = None) -> dict: ...
    def audit(self, since: int = 0) -> list[dict]: ...
    def metrics(self, since_step: int = 0, limit: int = ...) -> list[dict]: ...
    def replace_schedule(
        self,
        base_version: int,
        stages: Sequence[Stage | Mapping],
        *,
        author: str,
        reason: str = "",
        allow_stage_changes: bool = False,
    ) -> dict: ...
    def pause(
        self, stage: str | None = None, *, author: str, reason: str = "", base_version: int | None = None
    ) -> dict: ...
    def resume(
        self, stage: str | None = None, *, author: str, reason: str = "", base_version: int | None = None
    ) -> dict: ...
    def set_domain(
        self,
        stage: str,
        domain: str,
        *,
        author: str,
        reason: str = "",
        weight: float | None = None,
        entropy_target: float | None = None,
        clear_entropy_target: bool = False,
        base_version: int | None = None,
    ) -> dict: ...
    def advance(self, *, author: str, reason: str = "", base_version: int | None = None) -> dict: ...


class Backend(Protocol):
    def list_runs(self) -> list[str]:
        """Ids of the runs this control plane serves."""
        ...

    def controller(self, run_id: str) -> Controller:
        """The run's controller; RunNotFound for an unknown id."""
        ...

    def ready(self) -> bool:
        """Whether the backend can serve requests (the readiness probe)."""
        ...


class LocalBackend:
    """Every folder directly under `runs_dir` holding a controller.json is a run; its id is the
    folder name. Controllers are made once per run and kept."""

    def __init__(self, runs_dir: str | Path):
        self.runs_dir = Path(runs_dir)
        self._controllers: dict[str, ScheduleController] = {}
        self._lock = threading.Lock()

    def list_runs(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.runs_dir.iterdir()
            if re.fullmatch(RUN_ID_PATTERN, p.name) and (p / STATE_FILE).is_file()
        )

    def controller(self, run_id: str) -> ScheduleController:
        if not re.fullmatch(RUN_ID_PATTERN, run_id):  # also keeps ".." and "/" out of paths
            raise RunNotFound(run_id)
        with self._lock:
            if run_id not in self._controllers:
                run_dir = self.runs_dir / run_id
                if not (run_dir / STATE_FILE).is_file():
                    raise RunNotFound(run_id)
                self._controllers[run_id] = ScheduleController(run_dir)
            return self._controllers[run_id]

    def ready(self) -> bool:
        return self.runs_dir.is_dir()

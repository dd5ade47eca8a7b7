"""The schedule controller: one run's live curriculum, persisted in its run folder.

The driver calls `next_plan(step)` at each step boundary (which records the schedule version the
step used) and `report(step, metrics)` after the step; operators read and change the schedule
through the REST API, which calls the other methods. Everything is kept in
`<run_dir>/controller.json`, rewritten atomically (temp file, fsync, rename) after every change,
and restored when a controller is constructed on the same folder again. Per-step metrics go to
`<run_dir>/controller_metrics.jsonl`, one line per report.

The run folder's `controller.json` is the single source of truth of a run's schedule: the driver
opens a controller on it in its own process, and the control plane opens another on the same
folder (`services/backend.py`); nothing else holds schedule state. A controller is thread-safe
(a lock), and the processes that open one folder are serialised by an advisory file lock, each
reloading the file when another changed it. So a restarted control plane or driver loses
nothing: it reads the file again. A checkpoint carries `checkpoint_state()`, and a resumed run
calls `rewind` with it, so replayed steps are planned as the first time.

The file work (the atomic rewrite, the save id that tells a process the file changed, tailing the
metrics file) is in files.py; this module is the controller's logic over those files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from counterpoint.trainer.curriculum.files import MetricsLog, atomic_write_json, clean_metrics, read_save_id
from counterpoint.trainer.curriculum.plan import StepPlan
from counterpoint.trainer.curriculum.stages import ScheduleError, Stage
from counterpoint.trainer.curriculum.state import ScheduleState

log = logging.getLogger(__name__)

STATE_FILE = "controller.json"
METRICS_FILE = "controller_metrics.jsonl"
LOCK_FILE = ".controller.lock"
MAX_METRICS_RECORDS = 10_000
"""The most metric records one `metrics()` call returns."""


class ControllerStateError(RuntimeError):
    """controller.json exists but cannot be read back (HTTP 503): the run's state needs a person."""


class ScheduleController:
    """One run's schedule, its version history and audit log, the version each step applied,
    and the metrics the driver reported."""

    def __init__(
        self,
        run_dir: str | Path,
        initial_stages: Sequence[Stage | Mapping] | None = None,
        *,
        domains: Sequence[str] | None = None,
        author: str = "system",
        reason: str = "initial schedule",
        clock: Callable[[], float] = time.time,
    ):
        """Restore the state in `run_dir`, or start one from `initial_stages` if there is none
        (`initial_stages` is ignored when state exists: the persisted schedule wins)."""
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        self._clock = clock
        self._lock = threading.RLock()
        self._signature: str | None = None
        self._metrics = MetricsLog(self.run_dir / METRICS_FILE)
        if not (self.run_dir / STATE_FILE).exists():
            if initial_stages is None:
                raise FileNotFoundError(
                    f"{self.run_dir / STATE_FILE}: no controller state here; give an initial schedule"
                )
            self.run_dir.mkdir(parents=True, exist_ok=True)
            schedule = ScheduleState(initial_stages, domains=domains, author=author, reason=reason, clock=clock)
            with self._locked(refresh=False):
                if not (self.run_dir / STATE_FILE).exists():  # another process may have won the race
                    self.schedule, self.applied, self.last_plan = schedule, [], None
                    self._save()
        with self._locked():
            pass  # loads the persisted state and metrics

    # --- reads ---

    def status(self) -> dict:
        """Step, stage, latest and applied schedule version, run status."""
        with self._locked():
            return self._status()

    def get_schedule(self, version: int | None = None) -> dict:
        """The schedule now, or as it was at `version`, with each stage's progress."""
        with self._locked():
            return self._view(version)

    def audit(self, since: int = 0) -> list[dict]:
        """Audit entries of versions after `since`, oldest first."""
        with self._locked():
            return [e.model_dump(mode="json") for e in self.schedule.audit(since)]

    def metrics(self, since_step: int = 0, limit: int = MAX_METRICS_RECORDS) -> list[dict]:
        """Reported step metrics with step > `since_step`, by step, at most `limit` records."""
        with self._locked():
            records = self._metrics.records
            steps = sorted(s for s in records if s > since_step)[: max(0, min(limit, MAX_METRICS_RECORDS))]
            return [records[s] for s in steps]

    def applied_version(self, step: int) -> int | None:
        """The schedule version step `step` was planned with (None if it never was)."""
        with self._locked():
            return self._applied_at(step)[0]

    # --- operator writes: each returns the schedule view after the change ---

    def replace_schedule(
        self,
        base_version: int,
        stages: Sequence[Stage | Mapping],
        *,
        author: str,
        reason: str = "",
        allow_stage_changes: bool = False,
    ) -> dict:
        return self._mutate(
            lambda s: s.replace_stages(
                stages, author=author, reason=reason, base_version=base_version, allow_stage_changes=allow_stage_changes
            )
        )

    def pause(
        self, stage: str | None = None, *, author: str, reason: str = "", base_version: int | None = None
    ) -> dict:
        return self._mutate(lambda s: s.pause(stage, author=author, reason=reason, base_version=base_version))

    def resume(
        self, stage: str | None = None, *, author: str, reason: str = "", base_version: int | None = None
    ) -> dict:
        return self._mutate(lambda s: s.resume(stage, author=author, reason=reason, base_version=base_version))

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
    ) -> dict:
        return self._mutate(
            lambda s: s.set_domain(
                stage,
                domain,
                author=author,
                reason=reason,
                weight=weight,
                entropy_target=entropy_target,
                clear_entropy_target=clear_entropy_target,
                base_version=base_version,
            )
        )

    def advance(self, *, author: str, reason: str = "", base_version: int | None = None) -> dict:
        return self._mutate(lambda s: s.advance(author=author, reason=reason, base_version=base_version))

    def finish(self, *, author: str = "driver", reason: str = "") -> dict:
        """Mark the run finished (idempotent); every later change is refused with a conflict."""
        return self._mutate(lambda s: s.finish(author=author, reason=reason))

    def reopen(self, author: str = "driver", reason: str = "") -> dict:
        """Undo `finish` when a finished run is resumed for more steps (idempotent)."""
        return self._mutate(lambda s: s.reopen(author=author, reason=reason))

    # --- the driver ---

    def next_plan(self, step: int, prompts_per_step: int) -> StepPlan:
        """The plan for `step`, taken at the step boundary; records the version it applies."""
        with self._locked():
            plan = self.schedule.plan(step, prompts_per_step)
            last = (plan.schedule_version, step, plan.status)
            changed = self.last_plan != list(last)
            self.last_plan = list(last)
            if plan.status == "train":
                changed |= self._record_applied(step, plan.schedule_version, plan.stage)
            if changed:
                self._save()
            return plan

    def preview_plan(self, step: int, prompts_per_step: int) -> StepPlan:
        """What `next_plan(step)` would give now, recording nothing (a rollout launched ahead of
        its boundary is checked against it when its step comes)."""
        with self._locked():
            return self.schedule.plan(step, prompts_per_step)

    def checkpoint_state(self) -> dict:
        """The schedule state a checkpoint stores (stages, progress, rule windows, sampler state)."""
        with self._locked():
            return self.schedule.state_dict()

    def rewind(self, state: Mapping[str, Any], *, author: str = "resume", reason: str = "") -> dict:
        """Put the schedule back as the checkpoint that saved `state` left it (a new version, unless
        nothing changed since); returns the schedule view."""
        return self._mutate(lambda s: s.rewind(state, author=author, reason=reason))

    def report(self, step: int, per_domain_metrics: Mapping[str, Mapping[str, Any]]) -> None:
        """The metrics of a trained step, per domain; stored, and given to the stage's advance rule."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ScheduleError("step", f"must be an integer >= 0, got {step!r}")
        if not isinstance(per_domain_metrics, Mapping) or not all(
            isinstance(m, Mapping) for m in per_domain_metrics.values()
        ):
            raise ScheduleError("metrics", "must map each domain to a dict of its metrics")
        domains = {str(d): clean_metrics(m) for d, m in per_domain_metrics.items()}
        with self._locked():
            version, stage = self._applied_at(step)
            record = {
                "step": step,
                "schedule_version": version,
                "stage": stage,
                "time": self._clock(),
                "domains": domains,
            }
            self._metrics.append(record)
            entry = self.schedule.observe(step, domains)
            if entry is not None:
                log.info("run %s: %s (version %d)", self.run_id, entry.reason, entry.version)
            self._save()

    # --- internals ---

    @contextmanager
    def _locked(self, refresh: bool = True) -> Iterator[None]:
        with self._lock, self._lock_file() as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if refresh:
                    self._refresh()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _lock_file(self):
        try:
            return open(self.run_dir / LOCK_FILE, "a")
        except OSError as err:
            raise ControllerStateError(
                f"{self.run_dir}: cannot open the controller's lock file ({err.strerror})"
            ) from None

    def _mutate(self, change: Callable[[ScheduleState], int]) -> dict:
        with self._locked():
            before = self.schedule.version
            saved = self.schedule.state_dict()
            try:
                after = change(self.schedule)
            except BaseException:
                self.schedule = ScheduleState.from_state_dict(saved, clock=self._clock)  # never keep half a change
                raise
            if after != before:
                entry = self.schedule.entries[-1]
                self._save()
                log.info("run %s: %s by %s -> version %d", self.run_id, entry.action, entry.author, entry.version)
            return self._view(None)

    def _record_applied(self, step: int, version: int, stage: str | None) -> bool:
        last = self.applied[-1] if self.applied else None
        if last and last["version"] == version and last["from_step"] <= step:
            if step <= last["to_step"]:
                return False
            last["to_step"] = step
            return True
        self.applied.append({"version": version, "stage": stage, "from_step": step, "to_step": step})
        return True

    def _applied_at(self, step: int) -> tuple[int | None, str | None]:
        for run in reversed(self.applied):  # the latest plan covering the step wins (a resumed run replans)
            if run["from_step"] <= step <= run["to_step"]:
                return run["version"], run["stage"]
        return None, None

    def _status(self) -> dict:
        s = self.schedule
        stage = s.active_stage()
        paused = s.paused or bool(stage and stage.paused)
        status = "finished" if s.finished else "paused" if paused else "running"
        applied = self.last_plan[0] if self.last_plan else None
        return {
            "run_id": self.run_id,
            "status": status,
            "step": s.last_step,
            "stage": stage.name if stage else None,
            "stage_kind": stage.kind if stage else None,
            "latest_version": s.version,
            "applied_version": applied,
            "applied_at_step": self.last_plan[1] if self.last_plan else None,
            "run_paused": s.paused,
            "stage_paused": bool(stage and stage.paused),
            "stages_total": len(s.stages),
            "stages_finished": sum(p.status == "finished" for p in s.progress.values()),
        }

    def _view(self, version: int | None) -> dict:
        s = self.schedule
        snap = s.snapshot(version)
        if version is None:
            progress = [
                {"name": n, **p.model_dump(include={"status", "steps", "started_at_step", "finished_at_step"})}
                for n, p in s.progress.items()
            ]
        else:
            progress = [{"name": n, "status": st} for n, st in snap["status"].items()]
        return {
            "run_id": self.run_id,
            "version": snap["version"],
            "latest_version": s.version,
            "applied_version": self.last_plan[0] if self.last_plan else None,
            "paused": snap["paused"],
            "finished": snap["finished"],
            "stages": snap["stages"],
            "progress": progress,
        }

    def _save(self) -> None:
        save_id = uuid.uuid4().hex  # first key: other processes read it to tell whether they are current
        atomic_write_json(
            self.run_dir / STATE_FILE,
            {
                "save_id": save_id,
                "format": 1,
                "run_id": self.run_id,
                "saved_at": self._clock(),
                "schedule": self.schedule.state_dict(),
                "applied": self.applied,
                "last_plan": self.last_plan,
            },
        )
        self._signature = save_id

    def _refresh(self) -> None:
        path = self.run_dir / STATE_FILE
        sig = read_save_id(path)
        if sig is None or sig != self._signature:
            try:
                data = json.loads(path.read_text())
                schedule = ScheduleState.from_state_dict(data["schedule"], clock=self._clock)
                applied, last_plan = list(data["applied"]), data["last_plan"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise ControllerStateError(f"{path}: cannot restore the controller state: {err}") from err
            self.schedule, self.applied, self.last_plan, self._signature = schedule, applied, last_plan, sig
        self._metrics.read_new()

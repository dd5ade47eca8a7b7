"""The curriculum: an ordered list of training stages that a live run follows and an operator edits.

A stage trains some domains with weights (RL, or SFT on demonstrations) until its advance rule
fires: after N steps, when a domain's reward plateaus, when a domain's entropy crosses a
threshold, or by hand. `ScheduleState` holds the stages, their progress and a version number;
the driver asks it for the plan of each step (`plan`) and reports each step's per-domain metrics
(`observe`). Every change (an operator's edit, or a rule advancing a stage) makes a new version,
recorded with author, time and reason in the audit log, with a snapshot of the stages.

This module holds reading, the driver's side (plan, observe, and finish, reopen and rewind,
which the run itself asks for), persistence (`state_dict`) and the bookkeeping every change goes
through (`_record`, the checks of a stage list and of author and reason). The operator's edits
(replace_stages, pause, resume, set_domain, advance) are in edits.py, a mixin `ScheduleState`
inherits: they are the changes a person makes through the REST API, each based on a version.

Pure: pydantic records and the standard library; no Ray, no FastAPI. Orderings (joint,
sequential, BWT-guided) are in order.py; DUMP and the entropy-aware rule in weights.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from counterpoint.trainer.curriculum.edits import ScheduleEdits
from counterpoint.trainer.curriculum.plan import StepPlan, split_by_weight
from counterpoint.trainer.curriculum.stages import (
    MAX_STAGES,
    RULE_CHECKS,
    AuditEntry,
    DumpWeighting,
    ScheduleError,
    Stage,
    StageProgress,
    UnknownName,
    metric_value,
    parse_stages,
)
from counterpoint.trainer.curriculum.weights import DumpSampler, entropy_aware_weights

MAX_REASON_CHARS = 1000


class ScheduleState(ScheduleEdits):
    """The stages of a run, their progress, the current version and the audit log.

    The first stage not finished is the active one. Mutations validate everything before they
    change anything, then bump `version` and append an `AuditEntry` (a change that would leave
    the schedule as it is makes no version). `base_version`, when given, must equal `version`
    (optimistic concurrency: StaleVersion otherwise). `domains`, when given, is the set of domain
    names the run can train; stages naming another are refused. The operator's edits come from
    `ScheduleEdits` (edits.py).
    """

    def __init__(
        self,
        stages: Sequence[Stage | Mapping],
        *,
        domains: Sequence[str] | None = None,
        author: str = "system",
        reason: str = "initial schedule",
        clock: Callable[[], float] = time.time,
    ):
        self._clock = clock
        self.domains = tuple(domains) if domains else None
        self.stages = self._validated(stages)
        self.progress = {s.name: StageProgress() for s in self.stages}
        self.paused = False
        self.finished = False
        self.version = 0
        self.last_step: int | None = None
        self.latest: dict[str, dict[str, float]] = {}
        """The most recent finite metrics reported per domain (the entropy-aware rule reads them)."""
        self.entries: list[AuditEntry] = []
        self.snapshots: dict[int, dict] = {}
        self._refresh_statuses()
        self._record("create", author, reason, {"stages": [s.name for s in self.stages]})

    # --- reading ---

    def active_stage(self) -> Stage | None:
        return next((s for s in self.stages if self.progress[s.name].status == "active"), None)

    def plan(self, step: int, prompts_per_step: int) -> StepPlan:
        """The plan for `step`: the active stage's prompts per domain (`prompts_per_step` split by
        the stage's weights, after DUMP and the entropy-aware rule), or paused / done."""
        stage = self.active_stage()
        if self.finished or stage is None:
            why = "the run is finished" if self.finished else "every stage is finished"
            return StepPlan(step=step, status="done", schedule_version=self.version, reason=why)
        if self.paused or stage.paused:
            why = "the run is paused" if self.paused else f"stage {stage.name!r} is paused"
            return StepPlan(
                step=step, status="paused", schedule_version=self.version, stage=stage.name, kind=stage.kind, reason=why
            )
        weights = {d: s.weight for d, s in stage.domains.items() if s.weight > 0}
        if isinstance(stage.weighting, DumpWeighting):
            probs = self._sampler(stage).weights(weights)
            weights = {d: w * probs[d] for d, w in weights.items()}
        targets = {d: s.entropy_target for d, s in stage.domains.items() if s.entropy_target is not None}
        entropy = {d: self.latest[d]["entropy_mean"] for d in weights if "entropy_mean" in self.latest.get(d, {})}
        adjusted = entropy_aware_weights(weights, entropy, targets, stage.below_entropy_target_factor)
        if sum(adjusted.values()) > 0:  # holding back every domain would stall the run: keep the weights
            weights = adjusted
        prompts = split_by_weight(prompts_per_step, {d: w for d, w in weights.items() if w > 0})
        return StepPlan(
            step=step,
            status="train",
            schedule_version=self.version,
            stage=stage.name,
            kind=stage.kind,
            prompts_per_domain={d: n for d, n in prompts.items() if n > 0},
            entropy_targets=targets,
        )

    def snapshot(self, version: int | None = None) -> dict:
        """The schedule as it was at `version` (default: now): stages, statuses, paused, finished."""
        if version is None:
            return self._snapshot()
        if version not in self.snapshots:
            raise UnknownName("version", f"no schedule version {version}; versions run from 1 to {self.version}")
        return self.snapshots[version]

    def audit(self, since: int = 0) -> list[AuditEntry]:
        """Audit entries of the versions after `since`, oldest first."""
        return [e for e in self.entries if e.version > since]

    # --- the driver's side ---

    def observe(self, step: int, metrics: Mapping[str, Mapping[str, Any]]) -> AuditEntry | None:
        """Take the per-domain metrics of a trained step; advance the active stage if its rule fires.

        A step not after the last one observed (a repeated report) only refreshes `latest`.
        Returns the audit entry of the advance, if one happened."""
        for domain, values in metrics.items():
            finite = {
                k: float(v)
                for k, v in values.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            }
            self.latest.setdefault(domain, {}).update(finite)
        if self.last_step is not None and step <= self.last_step:
            return None
        self.last_step = step
        stage = self.active_stage()
        if self.finished or stage is None:
            return None
        prog = self.progress[stage.name]
        prog.steps += 1
        if prog.started_at_step is None:
            prog.started_at_step = step
        if isinstance(stage.weighting, DumpWeighting):
            sampler = self._sampler(stage)
            for d in stage.domains:
                mean, n = metric_value(metrics, d, "advantage_abs_mean"), metric_value(metrics, d, "samples")
                if mean is not None and n:
                    sampler.update_mean(d, mean, int(n))
            prog.dump = sampler.state_dict()
        why = RULE_CHECKS[stage.advance.type](stage.advance, prog, metrics)
        return self._finish_active("schedule", why) if why else None

    def finish(self, *, author: str, reason: str = "") -> int:
        """Mark the run finished (the driver, at the end); afterwards every change is refused."""
        if self.finished:
            return self.version
        self._check_text(author, reason)
        self.finished = True
        return self._record("finish", author, reason, {})

    def reopen(self, *, author: str, reason: str = "") -> int:
        """Undo `finish` (a finished run resumed for more steps); changes are accepted again."""
        if not self.finished:
            return self.version
        self._check_text(author, reason)
        self.finished = False
        return self._record("reopen", author, reason, {})

    def rewind(self, state: Mapping[str, Any], *, author: str, reason: str = "") -> int:
        """Put the schedule back as `state` (a `state_dict()` taken with a checkpoint) left it:
        stages, their progress (steps, plateau windows, DUMP sampler state), pause flags and the
        latest metrics. A resumed run then plans every replayed step exactly as the run did the
        first time. The audit log keeps everything: the rewind is a new version, and its detail
        lists the versions it undid. Nothing changes (no version) when `state` is the present."""
        saved = ScheduleState.from_state_dict(state, clock=self._clock)
        if saved._snapshot_of_progress() == self._snapshot_of_progress():
            return self.version
        self._check_text(author, reason)
        undone = [e.version for e in self.entries if e.version > saved.version]
        self.stages, self.progress, self.paused, self.finished = (
            saved.stages,
            saved.progress,
            saved.paused,
            saved.finished,
        )
        self.last_step, self.latest = saved.last_step, saved.latest
        return self._record(
            "rewind", author, reason, {"to_version": saved.version, "undone": undone, "step": saved.last_step}
        )

    def _snapshot_of_progress(self) -> dict:
        return {
            "stages": [s.model_dump(mode="json") for s in self.stages],
            "progress": {n: p.model_dump(mode="json") for n, p in self.progress.items()},
            "paused": self.paused,
            "finished": self.finished,
            "last_step": self.last_step,
            "latest": self.latest,
        }

    # --- persistence ---

    def state_dict(self) -> dict:
        return {
            "format": 1,
            "version": self.version,
            "domains": list(self.domains) if self.domains else None,
            "stages": [s.model_dump(mode="json") for s in self.stages],
            "progress": {n: p.model_dump(mode="json") for n, p in self.progress.items()},
            "paused": self.paused,
            "finished": self.finished,
            "last_step": self.last_step,
            "latest": self.latest,
            "audit": [e.model_dump(mode="json") for e in self.entries],
            "snapshots": {str(v): s for v, s in self.snapshots.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("format") != 1:
            raise ValueError(f"unknown schedule state format {state.get('format')!r}")
        self.domains = tuple(state["domains"]) if state["domains"] else None
        self.stages = [Stage.model_validate(s) for s in state["stages"]]
        self.progress = {n: StageProgress.model_validate(p) for n, p in state["progress"].items()}
        if list(self.progress) != [s.name for s in self.stages]:
            raise ValueError("schedule state: progress does not match the stages")
        self.version, self.paused, self.finished = int(state["version"]), bool(state["paused"]), bool(state["finished"])
        self.last_step = state["last_step"]
        self.latest = {d: dict(m) for d, m in state["latest"].items()}
        self.entries = [AuditEntry.model_validate(e) for e in state["audit"]]
        self.snapshots = {int(v): s for v, s in state["snapshots"].items()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], *, clock: Callable[[], float] = time.time) -> ScheduleState:
        obj = cls.__new__(cls)
        obj._clock = clock
        obj.load_state_dict(state)
        return obj

    # --- internals ---

    def _validated(self, stages: Sequence[Stage | Mapping]) -> list[Stage]:
        if not isinstance(stages, Sequence) or isinstance(stages, str | bytes):
            raise ScheduleError("stages", "must be a list of stages")
        if not 1 <= len(stages) <= MAX_STAGES:
            raise ScheduleError("stages", f"list between 1 and {MAX_STAGES} stages, got {len(stages)}")
        parsed = parse_stages(stages)
        seen: dict[str, int] = {}
        for i, s in enumerate(parsed):
            if s.name in seen:
                raise ScheduleError(
                    f"stages[{i}].name", f"stage {s.name!r} appears twice (also at stages[{seen[s.name]}])"
                )
            seen[s.name] = i
            for d in s.domains:
                if self.domains is not None and d not in self.domains:
                    raise ScheduleError(
                        f"stages[{i}].domains.{d}",
                        f"unknown domain {d!r}; this run's domains are {', '.join(self.domains)}",
                    )
        return parsed

    @staticmethod
    def _check_text(author: str, reason: str) -> None:
        if not isinstance(author, str) or not author.strip():
            raise ScheduleError("author", "every change needs an author")
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise ScheduleError("reason", f"a reason is text of at most {MAX_REASON_CHARS} characters")

    def _finish_active(self, author: str, reason: str) -> AuditEntry:
        stage = self.active_stage()
        prog = self.progress[stage.name]
        prog.status, prog.finished_at_step = "finished", self.last_step
        self._refresh_statuses()
        nxt = self.active_stage()
        self._record("advance", author, reason, {"from": stage.name, "to": nxt.name if nxt else None})
        return self.entries[-1]

    def _refresh_statuses(self) -> None:
        """The first stage not finished is active; the rest not finished are pending."""
        found = False
        for s in self.stages:
            prog = self.progress[s.name]
            if prog.status != "finished":
                prog.status = "pending" if found else "active"
                found = True

    def _sampler(self, stage: Stage) -> DumpSampler:
        w = stage.weighting
        sampler = DumpSampler(window=w.window, c=w.c, tau=w.tau)
        if self.progress[stage.name].dump:
            sampler.load_state_dict(self.progress[stage.name].dump)
        return sampler

    def _snapshot(self) -> dict:
        return {
            "version": self.version,
            "paused": self.paused,
            "finished": self.finished,
            "stages": [s.model_dump(mode="json") for s in self.stages],
            "status": {n: p.status for n, p in self.progress.items()},
        }

    def _record(self, action: str, author: str, reason: str, detail: dict) -> int:
        self.version += 1
        when = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds")
        self.entries.append(
            AuditEntry(
                version=self.version,
                time=when,
                author=author,
                action=action,
                reason=reason,
                step=self.last_step or 0,
                detail=detail,
            )
        )
        self.snapshots[self.version] = self._snapshot()
        return self.version

"""The curriculum: an ordered list of training stages that a live run follows and an operator edits.

A stage trains some domains with weights (RL, or SFT on demonstrations) until its advance rule
fires: after N steps, when a domain's reward plateaus, when a domain's entropy crosses a
threshold, or by hand. `ScheduleState` holds the stages, their progress and a version number;
the driver asks it for the plan of each step (`plan`) and reports each step's per-domain metrics
(`observe`). Every change (an operator's edit, or a rule advancing a stage) makes a new version,
recorded with author, time and reason in the audit log, with a snapshot of the stages.

Pure: pydantic records and the standard library; no Ray, no FastAPI. Orderings (joint,
sequential, BWT-guided) are in order.py; DUMP and the entropy-aware rule in weights.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from counterpoint.trainer.curriculum.stages import (
    MAX_STAGES, RULE_CHECKS, AuditEntry, DumpWeighting, ScheduleConflict, ScheduleError, Stage, StageProgress, StaleVersion,
    UnknownName, metric_value, parse_stages,
)
from counterpoint.trainer.curriculum.plan import StepPlan, split_by_weight
from counterpoint.trainer.curriculum.weights import DumpSampler, entropy_aware_weights

MAX_REASON_CHARS = 1000


class ScheduleState:
    """The stages of a run, their progress, the current version and the audit log.

    The first stage not finished is the active one. Mutations validate everything before they
    change anything, then bump `version` and append an `AuditEntry` (a change that would leave
    the schedule as it is makes no version). `base_version`, when given, must equal `version`
    (optimistic concurrency: StaleVersion otherwise). `domains`, when given, is the set of domain
    names the run can train; stages naming another are refused.
    """

    def __init__(self, stages: Sequence[Stage | Mapping], *, domains: Sequence[str] | None = None,
                 author: str = "system", reason: str = "initial schedule", clock: Callable[[], float] = time.time):
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
            return StepPlan(step=step, status="paused", schedule_version=self.version, stage=stage.name,
                            kind=stage.kind, reason=why)
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
        return StepPlan(step=step, status="train", schedule_version=self.version, stage=stage.name, kind=stage.kind,
                        prompts_per_domain={d: n for d, n in prompts.items() if n > 0}, entropy_targets=targets)

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
            finite = {k: float(v) for k, v in values.items()
                      if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
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

    # --- mutations ---

    def replace_stages(self, stages: Sequence[Stage | Mapping], *, author: str, reason: str = "",
                       base_version: int | None = None, allow_stage_changes: bool = False) -> int:
        """Replace the stage list (reorder, edit, and with `allow_stage_changes` add or remove).

        Finished stages must stay first, unchanged, in the order they ran; the active stage cannot
        be removed. If the active stage is moved behind another, that one becomes active at the
        next step (the moved stage keeps its progress). Without `allow_stage_changes` the new list
        must name exactly the current stages."""
        self._begin(base_version, author, reason)
        new = self._validated(stages)
        old_names, new_names = [s.name for s in self.stages], [s.name for s in new]
        if not allow_stage_changes:
            for name in old_names:
                if name not in new_names:
                    raise ScheduleError("stages", f"stage {name!r} is missing; a reorder must list every stage "
                                        f"({', '.join(old_names)}), or set allow_stage_changes to remove stages")
            for i, name in enumerate(new_names):
                if name not in old_names:
                    raise ScheduleError(f"stages[{i}].name", f"unknown stage {name!r}; the stages are {', '.join(old_names)} "
                                        "(set allow_stage_changes to add stages)")
        done = [n for n in old_names if self.progress[n].status == "finished"]
        if new_names[: len(done)] != done:
            raise ScheduleConflict("stages", f"finished stages must stay first, in the order they ran: {', '.join(done)}")
        old = {s.name: s for s in self.stages}
        for i, name in enumerate(done):
            if new[i] != old[name]:
                raise ScheduleConflict(f"stages[{i}]", f"stage {name!r} is finished and cannot be changed")
        active = self.active_stage()
        if active is not None and active.name not in new_names:
            raise ScheduleConflict("stages", f"stage {active.name!r} is active and cannot be removed; advance it first")
        if new == self.stages:
            return self.version
        self.stages = new
        self.progress = {n: self.progress.get(n, StageProgress()) for n in new_names}
        self._refresh_statuses()
        detail = {"order": new_names, "added": [n for n in new_names if n not in old_names],
                  "removed": [n for n in old_names if n not in new_names]}
        return self._record("replace", author, reason, detail)

    def pause(self, stage: str | None = None, *, author: str, reason: str = "", base_version: int | None = None) -> int:
        """Pause the whole run (stage None) or one stage; a paused active stage holds the run."""
        return self._set_paused(True, stage, author, reason, base_version)

    def resume(self, stage: str | None = None, *, author: str, reason: str = "", base_version: int | None = None) -> int:
        return self._set_paused(False, stage, author, reason, base_version)

    def set_domain(self, stage: str, domain: str, *, author: str, reason: str = "", weight: float | None = None,
                   entropy_target: float | None = None, clear_entropy_target: bool = False,
                   base_version: int | None = None) -> int:
        """Set a domain's weight and/or entropy target in one stage (`clear_entropy_target` removes it)."""
        self._begin(base_version, author, reason)
        if weight is None and entropy_target is None and not clear_entropy_target:
            raise ScheduleError("weight", "give a weight, an entropy_target, or both")
        for field, value in (("weight", weight), ("entropy_target", entropy_target)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not math.isfinite(value) or value < 0):
                raise ScheduleError(field, f"must be a finite number >= 0, got {value!r}")
        i, current = self._changeable_stage(stage)
        if domain not in current.domains:
            raise UnknownName("domain", f"stage {stage!r} has no domain {domain!r}; its domains are "
                              f"{', '.join(current.domains)} (add one by replacing the schedule)")
        setting = current.domains[domain].model_dump()
        if weight is not None:
            setting["weight"] = float(weight)
        if entropy_target is not None or clear_entropy_target:
            setting["entropy_target"] = None if clear_entropy_target else float(entropy_target)
        data = current.model_dump()
        data["domains"][domain] = setting
        try:
            updated = Stage.model_validate(data)
        except ValidationError as err:
            raise ScheduleError("weight", f"stage {stage!r}: {err.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        if updated == current:
            return self.version
        self.stages = [*self.stages[:i], updated, *self.stages[i + 1:]]
        detail = {"stage": stage, "domain": domain, "before": current.domains[domain].model_dump(), "after": setting}
        return self._record("set_domain", author, reason, detail)

    def advance(self, *, author: str, reason: str = "", base_version: int | None = None) -> int:
        """Finish the active stage now (how a `manual` stage ends); the next one becomes active."""
        self._begin(base_version, author, reason)
        if self.active_stage() is None:
            raise ScheduleConflict("stage", "every stage is finished; there is no active stage to advance")
        return self._finish_active(author, reason or "advanced by hand").version

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
        self.stages, self.progress, self.paused, self.finished = saved.stages, saved.progress, saved.paused, saved.finished
        self.last_step, self.latest = saved.last_step, saved.latest
        return self._record("rewind", author, reason, {"to_version": saved.version, "undone": undone,
                                                        "step": saved.last_step})

    def _snapshot_of_progress(self) -> dict:
        return {"stages": [s.model_dump(mode="json") for s in self.stages],
                "progress": {n: p.model_dump(mode="json") for n, p in self.progress.items()},
                "paused": self.paused, "finished": self.finished, "last_step": self.last_step, "latest": self.latest}

    # --- persistence ---

    def state_dict(self) -> dict:
        return {
            "format": 1, "version": self.version, "domains": list(self.domains) if self.domains else None,
            "stages": [s.model_dump(mode="json") for s in self.stages],
            "progress": {n: p.model_dump(mode="json") for n, p in self.progress.items()},
            "paused": self.paused, "finished": self.finished, "last_step": self.last_step, "latest": self.latest,
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
    def from_state_dict(cls, state: Mapping[str, Any], *, clock: Callable[[], float] = time.time) -> "ScheduleState":
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
                raise ScheduleError(f"stages[{i}].name", f"stage {s.name!r} appears twice (also at stages[{seen[s.name]}])")
            seen[s.name] = i
            for d in s.domains:
                if self.domains is not None and d not in self.domains:
                    raise ScheduleError(f"stages[{i}].domains.{d}", f"unknown domain {d!r}; this run's domains are "
                                        f"{', '.join(self.domains)}")
        return parsed

    def _begin(self, base_version: int | None, author: str, reason: str) -> None:
        self._check_text(author, reason)
        if self.finished:
            raise ScheduleConflict("run", "the run is finished; its schedule can no longer change")
        if base_version is not None and base_version != self.version:
            raise StaleVersion(base_version, self.version)

    @staticmethod
    def _check_text(author: str, reason: str) -> None:
        if not isinstance(author, str) or not author.strip():
            raise ScheduleError("author", "every change needs an author")
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise ScheduleError("reason", f"a reason is text of at most {MAX_REASON_CHARS} characters")

    def _changeable_stage(self, name: str) -> tuple[int, Stage]:
        for i, s in enumerate(self.stages):
            if s.name == name:
                if self.progress[name].status == "finished":
                    raise ScheduleConflict("stage", f"stage {name!r} is finished and cannot be changed or resumed")
                return i, s
        raise UnknownName("stage", f"no stage {name!r}; the stages are {', '.join(s.name for s in self.stages)}")

    def _set_paused(self, paused: bool, stage: str | None, author: str, reason: str, base_version: int | None) -> int:
        self._begin(base_version, author, reason)
        action = "pause" if paused else "resume"
        if stage is None:
            if self.paused == paused:
                return self.version
            self.paused = paused
            return self._record(action, author, reason, {"stage": None})
        i, current = self._changeable_stage(stage)
        if current.paused == paused:
            return self.version
        self.stages = [*self.stages[:i], current.model_copy(update={"paused": paused}), *self.stages[i + 1:]]
        return self._record(action, author, reason, {"stage": stage})

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
        return {"version": self.version, "paused": self.paused, "finished": self.finished,
                "stages": [s.model_dump(mode="json") for s in self.stages],
                "status": {n: p.status for n, p in self.progress.items()}}

    def _record(self, action: str, author: str, reason: str, detail: dict) -> int:
        self.version += 1
        when = datetime.fromtimestamp(self._clock(), timezone.utc).isoformat(timespec="milliseconds")
        self.entries.append(AuditEntry(version=self.version, time=when, author=author, action=action,
                                       reason=reason, step=self.last_step or 0, detail=detail))
        self.snapshots[self.version] = self._snapshot()
        return self.version

"""The operator's edits of a schedule: replace or reorder the stages, pause and resume the run or
a stage, set a domain's weight or entropy target, and advance a stage by hand.

`ScheduleEdits` is a mixin that `ScheduleState` (state.py) inherits. The seam is who asks: these
are the changes a person makes through the REST API, each based on a version the operator saw
(`base_version`, optimistic concurrency: StaleVersion when another change came first) and each
refused once the run is finished; state.py keeps what the run itself does (plan, observe, finish,
reopen, rewind), reading, and persistence. An edit validates everything before it changes
anything, then makes a new version; one that would leave the schedule as it is returns the
current version and records nothing.

The mixin holds no state of its own. It edits the attributes `ScheduleState` sets (annotated
below) and goes through its bookkeeping: `active_stage`, `_validated` (a stage list this run can
train), `_check_text` (author and reason), `_record` (the new version and its audit entry),
`_refresh_statuses` and `_finish_active`. Pure, like state.py: pydantic and the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from counterpoint.trainer.curriculum.stages import (
    ScheduleConflict,
    ScheduleError,
    Stage,
    StageProgress,
    StaleVersion,
    UnknownName,
)


class ScheduleEdits:
    """The operator's changes to a `ScheduleState`; each returns the schedule version after it."""

    # Set by ScheduleState.__init__ (or load_state_dict); declared here for the reader of the edits.
    stages: list[Stage]
    progress: dict[str, StageProgress]
    paused: bool
    finished: bool
    version: int

    def replace_stages(
        self,
        stages: Sequence[Stage | Mapping],
        *,
        author: str,
        reason: str = "",
        base_version: int | None = None,
        allow_stage_changes: bool = False,
    ) -> int:
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
                    raise ScheduleError(
                        "stages",
                        f"stage {name!r} is missing; a reorder must list every stage "
                        f"({', '.join(old_names)}), or set allow_stage_changes to remove stages",
                    )
            for i, name in enumerate(new_names):
                if name not in old_names:
                    raise ScheduleError(
                        f"stages[{i}].name",
                        f"unknown stage {name!r}; the stages are {', '.join(old_names)} "
                        "(set allow_stage_changes to add stages)",
                    )
        done = [n for n in old_names if self.progress[n].status == "finished"]
        if new_names[: len(done)] != done:
            raise ScheduleConflict(
                "stages", f"finished stages must stay first, in the order they ran: {', '.join(done)}"
            )
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
        detail = {
            "order": new_names,
            "added": [n for n in new_names if n not in old_names],
            "removed": [n for n in old_names if n not in new_names],
        }
        return self._record("replace", author, reason, detail)

    def pause(self, stage: str | None = None, *, author: str, reason: str = "", base_version: int | None = None) -> int:
        """Pause the whole run (stage None) or one stage; a paused active stage holds the run."""
        return self._set_paused(True, stage, author, reason, base_version)

    def resume(
        self, stage: str | None = None, *, author: str, reason: str = "", base_version: int | None = None
    ) -> int:
        return self._set_paused(False, stage, author, reason, base_version)

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
    ) -> int:
        """Set a domain's weight and/or entropy target in one stage (`clear_entropy_target` removes it)."""
        self._begin(base_version, author, reason)
        if weight is None and entropy_target is None and not clear_entropy_target:
            raise ScheduleError("weight", "give a weight, an entropy_target, or both")
        for field, value in (("weight", weight), ("entropy_target", entropy_target)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0
            ):
                raise ScheduleError(field, f"must be a finite number >= 0, got {value!r}")
        i, current = self._changeable_stage(stage)
        if domain not in current.domains:
            raise UnknownName(
                "domain",
                f"stage {stage!r} has no domain {domain!r}; its domains are "
                f"{', '.join(current.domains)} (add one by replacing the schedule)",
            )
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
            raise ScheduleError(
                "weight", f"stage {stage!r}: {err.errors()[0]['msg'].removeprefix('Value error, ')}"
            ) from None
        if updated == current:
            return self.version
        self.stages = [*self.stages[:i], updated, *self.stages[i + 1 :]]
        detail = {"stage": stage, "domain": domain, "before": current.domains[domain].model_dump(), "after": setting}
        return self._record("set_domain", author, reason, detail)

    def advance(self, *, author: str, reason: str = "", base_version: int | None = None) -> int:
        """Finish the active stage now (how a `manual` stage ends); the next one becomes active."""
        self._begin(base_version, author, reason)
        if self.active_stage() is None:
            raise ScheduleConflict("stage", "every stage is finished; there is no active stage to advance")
        return self._finish_active(author, reason or "advanced by hand").version

    # --- the checks of an edit, and its helpers ---

    def _begin(self, base_version: int | None, author: str, reason: str) -> None:
        self._check_text(author, reason)
        if self.finished:
            raise ScheduleConflict("run", "the run is finished; its schedule can no longer change")
        if base_version is not None and base_version != self.version:
            raise StaleVersion(base_version, self.version)

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
        self.stages = [*self.stages[:i], current.model_copy(update={"paused": paused}), *self.stages[i + 1 :]]
        return self._record(action, author, reason, {"stage": stage})

"""Request and response bodies of the control-plane API (their docstrings become the OpenAPI
descriptions). Stages are the curriculum's own `Stage` records, so the API and the run validate
a schedule by the same rules."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from counterpoint.trainer.curriculum.stages import MAX_STAGES, AuditEntry, Name, Stage

MAX_REASON = 1000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class FieldError(Body):
    field: str
    """Where, e.g. `stages[1].domains.math.weight`."""
    message: str
    """What is wrong with it."""


class ErrorBody(Body):
    """Every 4xx/5xx answer has this shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "base_version: the schedule is at version 7, not 6; read it again and re-apply your change",  # noqa: E501
                    "error": "stale_version",
                    "field": "base_version",
                    "current_version": 7,
                }
            ]
        }
    )

    detail: str
    """What went wrong and what to change."""
    error: str
    """A stable code: invalid, unauthorized, forbidden, not_found, conflict, stale_version,
    payload_too_large, unavailable, bad_request, method_not_allowed, internal."""
    field: str | None = None
    """The request field at fault, when there is one."""
    current_version: int | None = None
    """On stale_version: the schedule's current version."""
    errors: list[FieldError] | None = None
    """On invalid: every field at fault."""


class RunStatus(Body):
    """Where a run stands: its step, active stage and the schedule versions."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "counterpoint-20261126-101500",
                    "status": "running",
                    "step": 17,
                    "stage": "structured",
                    "stage_kind": "rl",
                    "latest_version": 4,
                    "applied_version": 4,
                    "applied_at_step": 18,
                    "run_paused": False,
                    "stage_paused": False,
                    "stages_total": 2,
                    "stages_finished": 0,
                }
            ]
        }
    )

    run_id: str
    """The run's id (its folder name)."""
    status: Literal["running", "paused", "finished"]
    """paused: the run or its active stage is paused, and the driver waits."""
    step: int | None
    """The last step the driver reported (None before the first)."""
    stage: str | None
    """The active stage (None when every stage is finished)."""
    stage_kind: Literal["rl", "sft"] | None
    """The active stage's kind."""
    latest_version: int
    """The newest schedule version."""
    applied_version: int | None
    """The version of the last plan the driver took (a change applies at the next step boundary)."""
    applied_at_step: int | None
    """The step that plan was for."""
    run_paused: bool
    """The whole run is paused."""
    stage_paused: bool
    """The active stage is paused."""
    stages_total: int
    """Stages in the schedule."""
    stages_finished: int
    """Stages already finished."""


class UnavailableRun(Body):
    run_id: str
    """The run's id."""
    detail: str
    """Why its state could not be read."""


class RunList(Body):
    runs: list[RunStatus]
    """Every run served, by id."""
    unavailable: list[UnavailableRun] = []
    """Runs whose state could not be read right now."""


class StageProgressView(Body):
    name: str
    """The stage."""
    status: Literal["pending", "active", "finished"]
    """The first stage not finished is active."""
    steps: int | None = None
    """Steps trained in the stage (current version only)."""
    started_at_step: int | None = None
    """The first step trained in the stage."""
    finished_at_step: int | None = None
    """The step after which the stage finished."""


class ScheduleView(Body):
    """A run's schedule: the stages in order, their progress, and its versions."""

    run_id: str
    """The run's id."""
    version: int
    """The version shown (the latest unless an older one was asked for)."""
    latest_version: int
    """The newest version."""
    applied_version: int | None
    """The version of the last plan the driver took."""
    paused: bool
    """The whole run is paused."""
    finished: bool
    """The run is finished; its schedule can no longer change."""
    stages: list[Stage]
    """In order; the first stage not finished is the active one."""
    progress: list[StageProgressView]
    """Each stage's status (owned by the run; not part of a PUT)."""


class ScheduleReplace(Body):
    """Replace the stage list. A reorder is this with the same stages in a new order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "base_version": 3,
                    "reason": "creative first: math entropy is still high",
                    "stages": [
                        {
                            "name": "creative",
                            "domains": {"creative": {"weight": 1.0}},
                            "advance": {"type": "steps", "steps": 50},
                        },
                        {
                            "name": "structured",
                            "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0}},
                            "advance": {"type": "plateau", "domain": "math", "window": 20, "min_delta": 0.01},
                        },
                    ],
                }
            ]
        }
    )

    base_version: int = Field(ge=1)
    """The version this change was based on; a different current version answers 409."""
    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES)
    """The full new stage list. Finished stages must stay first and unchanged."""
    allow_stage_changes: bool = False
    """false (the default): the list must name exactly the current stages, so a reorder cannot
    drop or add one by mistake. true: pending stages may be removed and new ones added."""
    reason: str = Field("", max_length=MAX_REASON)
    """Why, for the audit log."""


class PauseRequest(Body):
    """Pause or resume the whole run (no stage) or one stage. The body may be omitted."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"stage": "creative", "reason": "judge is down"}]})

    stage: Name | None = None
    """The stage; omitted or null: the whole run."""
    base_version: int | None = Field(None, ge=1)
    """If given, the change is refused (409) unless the schedule is still at this version."""
    reason: str = Field("", max_length=MAX_REASON)
    """Why, for the audit log."""


class AdvanceRequest(Body):
    """Finish the active stage now; the next stage becomes active. The body may be omitted."""

    base_version: int | None = Field(None, ge=1)
    """If given, the change is refused (409) unless the schedule is still at this version."""
    reason: str = Field("", max_length=MAX_REASON)
    """Why, for the audit log."""


class DomainPatch(Body):
    """Change one domain of one stage. Fields left out stay as they are."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"weight": 0.5, "base_version": 4},
                {"entropy_target": 0.3, "reason": "keep code exploring"},
                {"entropy_target": None, "reason": "remove the budget"},
            ]
        }
    )

    weight: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    """New weight (≥ 0, finite); at least one domain of the stage must keep a weight above 0."""
    entropy_target: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    """New entropy budget in nats; an explicit null removes it."""
    base_version: int | None = Field(None, ge=1)
    """If given, the change is refused (409) unless the schedule is still at this version."""
    reason: str = Field("", max_length=MAX_REASON)
    """Why, for the audit log."""


class MetricsRecord(Body):
    step: int
    """The step, as the driver numbers it."""
    schedule_version: int | None
    """The schedule version the step was planned with."""
    stage: str | None
    """The stage the step trained."""
    time: float
    """When it was reported, Unix seconds."""
    domains: dict[str, dict[str, float | int | bool | None]]
    """Per-domain step metrics as the driver reported them (reward_mean, entropy_mean, ...)."""


class MetricsView(Body):
    run_id: str
    """The run's id."""
    since: int
    """The `since` asked for."""
    records: list[MetricsRecord]
    """Steps after `since`, in step order."""


class AuditView(Body):
    run_id: str
    """The run's id."""
    since: int
    """The `since` asked for."""
    entries: list[AuditEntry]
    """Changes after version `since`, oldest first."""


class Health(Body):
    status: str
    """ok (liveness) or ready (readiness)."""
    detail: dict[str, Any] = {}
    """Extra facts, e.g. how many runs are served."""


class Identity(Body):
    """Who the presented token acts as."""

    name: str
    """The token's name (from the tokens file or env; never the token itself)."""
    role: Literal["viewer", "operator"]
    """viewer: reads only; operator: also changes schedules and starts runs."""


class SubmitRun(Body):
    """A training run to start on the control plane's Ray cluster (through the Ray Jobs API)."""

    config: dict[str, Any]
    """The run's config, as in a YAML config file (validated before anything is submitted)."""
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    """Submission id; default `<run.name>-<timestamp>`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "config": {
                        "run": {"name": "demo", "steps": 40},
                        "domains": {"math": {"weight": 2}, "creative": {"weight": 1}},
                    },
                    "name": "demo-1",
                }
            ]
        },
    )


class SubmittedRun(Body):
    job_id: str
    """The Ray job's submission id (`counterpoint job status <id>`)."""

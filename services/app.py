"""The control plane's REST API: operators read and steer the curriculum of live runs.

`create_app(backend, auth)` builds the FastAPI app: uvicorn serves it alone on one machine
(`counterpoint serve`), Ray Serve hosts it in a cluster. Every write needs an operator token and
is based on a schedule version (stale → 409); every read a viewer token. A change is applied by
the run at its next step boundary. Bad input answers a 4xx whose body names the field and what to
fix; bodies over the size limit are refused (413) before they are parsed.

This module holds the routes. The error model (the body of every error, the status codes and
their descriptions, the exception handlers) and the body-size middleware are in errors.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Query
from fastapi import Path as PathParam

from counterpoint.services.auth import Auth, Principal, is_loopback
from counterpoint.services.backend import RUN_ID_PATTERN, Backend, BackendUnavailable, RunNotFound
from counterpoint.services.errors import BodySizeLimit, error_response, error_responses, install_error_handlers
from counterpoint.services.prom import add_prometheus
from counterpoint.services.schemas import (
    AdvanceRequest,
    AuditView,
    DomainPatch,
    Health,
    Identity,
    MetricsView,
    PauseRequest,
    RunList,
    RunStatus,
    ScheduleReplace,
    ScheduleView,
    SubmitRun,
    SubmittedRun,
    UnavailableRun,
)
from counterpoint.services.web import add_web
from counterpoint.trainer.curriculum.controller import MAX_METRICS_RECORDS, ControllerStateError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

DESCRIPTION = """\
Steer the curriculum of live Counterpoint runs. A run follows an ordered list of stages (each
trains some domains with weights until its advance rule fires); operators reorder stages, pause
and resume them, and change a domain's weight or entropy target while the run trains.

* **Versions.** Every change makes a new schedule version. Writes carry the `base_version` they
  were based on (required for PUT, optional elsewhere); a stale one gets **409** with the current
  version, so two operators never silently overwrite each other.
* **When changes apply.** At the run's next step boundary. `GET /v1/runs/{run_id}` shows the
  latest version and the one the driver applied; each metrics record names its version.
* **Auth.** `Authorization: Bearer <token>`. Viewer tokens read; operator tokens also write.
  401 without a valid token, 403 for a viewer that writes. `/healthz` and `/readyz` are open.
* **Errors.** Every 4xx has `detail` (what to fix), `error` (a code) and, where it applies,
  `field`. Bodies over 64 KiB get 413.
"""


def create_app(
    backend: Backend,
    auth: Auth,
    *,
    host: str = "127.0.0.1",
    max_body_bytes: int = MAX_BODY_BYTES,
    submit: Callable[[Any, str | None], str] | None = None,
) -> FastAPI:
    """The control-plane app over `backend`. `host` is the address the server binds: with auth
    disabled, only a loopback address is accepted. `submit(config, name) -> job id` starts a run
    on a Ray cluster (POST /v1/runs); without it there is no such route."""
    if auth.disabled and not is_loopback(host):
        raise ValueError(
            f"auth is disabled, so the control plane may only bind a loopback address, not {host!r}; "
            "configure tokens (COUNTERPOINT_TOKENS_FILE or COUNTERPOINT_OPERATOR_TOKEN) to serve beyond it"
        )
    app = FastAPI(
        title="Counterpoint control plane",
        version="1.0",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "runs", "description": "Runs and their status."},
            {"name": "schedule", "description": "Read and change a run's curriculum."},
            {"name": "observe", "description": "Per-step metrics and the audit log."},
            {"name": "probes", "description": "Liveness and readiness (no auth)."},
        ],
    )
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    install_error_handlers(app)
    viewer, operator = auth.dependency("viewer"), auth.dependency("operator")
    run_id_param = PathParam(
        description="The run id (its folder name).", pattern=RUN_ID_PATTERN, openapi_examples={"run": {"value": "demo"}}
    )
    stage_param = PathParam(
        description="A stage name.", pattern=NAME_PATTERN, openapi_examples={"stage": {"value": "structured"}}
    )
    domain_param = PathParam(
        description="A domain of that stage.", pattern=NAME_PATTERN, openapi_examples={"domain": {"value": "math"}}
    )
    read_errors, write_errors = (
        error_responses(401, 403, 404, 422, 503),
        error_responses(400, 401, 403, 404, 409, 413, 422, 503),
    )

    @app.get(
        "/healthz",
        tags=["probes"],
        response_model=Health,
        summary="Liveness",
        description="200 while the process serves requests.",
    )
    def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["probes"],
        response_model=Health,
        summary="Readiness",
        description="200 when the backend can serve runs; 503 otherwise.",
        responses=error_responses(503),
    )
    def readyz():
        if not backend.ready():
            return error_response(503, "the backend is not ready (e.g. the runs folder does not exist)")
        return Health(status="ready", detail={"runs": len(backend.list_runs())})

    @app.get(
        "/v1/whoami",
        tags=["runs"],
        response_model=Identity,
        summary="The token's identity",
        description="The name and role of the presented token (viewer or operator), so a client such as the "
        "operator's page can show a read-only view to a viewer before any write is refused.",
        responses=error_responses(401),
    )
    def whoami(who: Principal = Depends(viewer)) -> Identity:
        return Identity(name=who.name, role=who.role)

    @app.get(
        "/v1/runs",
        tags=["runs"],
        response_model=RunList,
        summary="List runs",
        description="Every run this control plane serves, with its status.",
        responses=error_responses(401, 503),
    )
    def list_runs(who: Principal = Depends(viewer)) -> RunList:
        runs, unavailable = [], []
        for run_id in backend.list_runs():
            try:
                runs.append(RunStatus(**backend.controller(run_id).status()))
            except (ControllerStateError, BackendUnavailable, RunNotFound) as err:
                unavailable.append(UnavailableRun(run_id=run_id, detail=str(err)))
        return RunList(runs=runs, unavailable=unavailable)

    if submit is not None:
        _add_submit_route(app, submit, operator)

    @app.get(
        "/v1/runs/{run_id}",
        tags=["runs"],
        response_model=RunStatus,
        summary="A run's status",
        description="Last reported step, active stage, latest and applied schedule version.",
        responses=read_errors,
    )
    def run_status(run_id: str = run_id_param, who: Principal = Depends(viewer)) -> RunStatus:
        return RunStatus(**backend.controller(run_id).status())

    @app.get(
        "/v1/runs/{run_id}/schedule",
        tags=["schedule"],
        response_model=ScheduleView,
        summary="Get the schedule",
        description="The stages in order with their progress; `version` asks for an older version as it was.",
        responses=read_errors,
    )
    def get_schedule(
        run_id: str = run_id_param,
        version: int | None = Query(None, ge=1, description="An older version to show (default: the latest)."),
        who: Principal = Depends(viewer),
    ) -> ScheduleView:
        return ScheduleView(**backend.controller(run_id).get_schedule(version))

    @app.put(
        "/v1/runs/{run_id}/schedule",
        tags=["schedule"],
        response_model=ScheduleView,
        summary="Replace or reorder the schedule",
        description="Replace the stage list, based on `base_version`. A reorder is the same stages in a new order; "
        "without `allow_stage_changes` a list that drops, adds or repeats a stage is refused (422). "
        "Finished stages must stay first and unchanged (409). If another stage is moved before the "
        "active one, it becomes active at the next step; the moved stage keeps its progress.",
        responses=write_errors,
    )
    def put_schedule(
        body: ScheduleReplace, run_id: str = run_id_param, who: Principal = Depends(operator)
    ) -> ScheduleView:
        view = backend.controller(run_id).replace_schedule(
            body.base_version,
            body.stages,
            author=who.name,
            reason=body.reason,
            allow_stage_changes=body.allow_stage_changes,
        )
        return ScheduleView(**view)

    @app.post(
        "/v1/runs/{run_id}/pause",
        tags=["schedule"],
        response_model=ScheduleView,
        summary="Pause the run or a stage",
        description="Without `stage`, the whole run waits at its next step boundary. With `stage`, that stage "
        "holds the run whenever it is the active one. Pausing what is already paused changes nothing.",
        responses=write_errors,
    )
    def pause(
        run_id: str = run_id_param, body: PauseRequest | None = None, who: Principal = Depends(operator)
    ) -> ScheduleView:
        body = body or PauseRequest()
        return ScheduleView(
            **backend.controller(run_id).pause(
                body.stage, author=who.name, reason=body.reason, base_version=body.base_version
            )
        )

    @app.post(
        "/v1/runs/{run_id}/resume",
        tags=["schedule"],
        response_model=ScheduleView,
        summary="Resume the run or a stage",
        description="Undo a pause. Resuming a finished stage, or anything in a finished run, is refused (409).",
        responses=write_errors,
    )
    def resume(
        run_id: str = run_id_param, body: PauseRequest | None = None, who: Principal = Depends(operator)
    ) -> ScheduleView:
        body = body or PauseRequest()
        return ScheduleView(
            **backend.controller(run_id).resume(
                body.stage, author=who.name, reason=body.reason, base_version=body.base_version
            )
        )

    @app.post(
        "/v1/runs/{run_id}/advance",
        tags=["schedule"],
        response_model=ScheduleView,
        summary="Advance to the next stage",
        description="Finish the active stage now (how a stage with a `manual` advance rule ends).",
        responses=write_errors,
    )
    def advance(
        run_id: str = run_id_param, body: AdvanceRequest | None = None, who: Principal = Depends(operator)
    ) -> ScheduleView:
        body = body or AdvanceRequest()
        return ScheduleView(
            **backend.controller(run_id).advance(author=who.name, reason=body.reason, base_version=body.base_version)
        )

    @app.patch(
        "/v1/runs/{run_id}/stages/{stage}/domains/{domain}",
        tags=["schedule"],
        response_model=ScheduleView,
        summary="Set a domain's weight or entropy target",
        description="Change one domain of one stage; fields left out stay as they are, an explicit null "
        "`entropy_target` removes the budget. Unknown stage or domain: 404 (add a domain with PUT).",
        responses=write_errors,
    )
    def patch_domain(
        body: DomainPatch,
        run_id: str = run_id_param,
        stage: str = stage_param,
        domain: str = domain_param,
        who: Principal = Depends(operator),
    ) -> ScheduleView:
        clear = "entropy_target" in body.model_fields_set and body.entropy_target is None
        view = backend.controller(run_id).set_domain(
            stage,
            domain,
            author=who.name,
            reason=body.reason,
            weight=body.weight,
            entropy_target=body.entropy_target,
            clear_entropy_target=clear,
            base_version=body.base_version,
        )
        return ScheduleView(**view)

    @app.get(
        "/v1/runs/{run_id}/metrics",
        tags=["observe"],
        response_model=MetricsView,
        summary="Step metrics",
        description="Per-domain metrics the driver reported, for steps after `since`, each with the schedule "
        "version it used.",
        responses=read_errors,
    )
    def metrics(
        run_id: str = run_id_param,
        since: int = Query(0, ge=0, description="Only steps after this one."),
        limit: int = Query(1000, ge=1, le=MAX_METRICS_RECORDS, description="At most this many records."),
        who: Principal = Depends(viewer),
    ) -> MetricsView:
        records = backend.controller(run_id).metrics(since, limit)
        return MetricsView(run_id=run_id, since=since, records=records)

    @app.get(
        "/v1/runs/{run_id}/audit",
        tags=["observe"],
        response_model=AuditView,
        summary="The audit log",
        description="Every schedule change after version `since`: who, when, why, what.",
        responses=read_errors,
    )
    def audit(
        run_id: str = run_id_param,
        since: int = Query(0, ge=0, description="Only versions after this one."),
        who: Principal = Depends(viewer),
    ) -> AuditView:
        return AuditView(run_id=run_id, since=since, entries=backend.controller(run_id).audit(since))

    add_prometheus(app, backend, auth)
    add_web(app)
    return app


def _add_submit_route(app: FastAPI, submit: Callable[[Any, str | None], str], operator) -> None:
    """POST /v1/runs, present only when the control plane has a Ray cluster to submit to
    (elsewhere POST on /v1/runs is 405, and the route is absent from the OpenAPI spec)."""

    @app.post(
        "/v1/runs",
        tags=["runs"],
        response_model=SubmittedRun,
        status_code=201,
        summary="Start a run",
        description="Validate a run config and submit it as a job to this control plane's Ray cluster "
        "(the same as `counterpoint submit`). 422 names the config field to fix.",
        responses=error_responses(401, 403, 413, 422, 503),
    )
    def start_run(body: SubmitRun, who: Principal = Depends(operator)) -> SubmittedRun:
        # The run config tree holds every package's slice (cluster's too): imported only here, so
        # the control plane itself depends on no cluster code (tests/test_layout.py).
        from counterpoint.config import ConfigError, config_from_dict

        try:
            cfg = config_from_dict(body.config)
        except ConfigError as err:
            first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
            return error_response(422, f"config.{first}", field="config." + first.split(":")[0])
        try:
            job_id = submit(cfg, body.name)
        except Exception as err:  # the Jobs API refused or is unreachable: say so, never a 500
            log.error("submit by %s failed: %s", who.name, err)
            return error_response(503, f"the Ray Jobs API refused the run: {err}")
        log.info("run submitted by %s: %s", who.name, job_id)
        return SubmittedRun(job_id=job_id)

"""Prometheus metrics of the control plane: `GET /metrics`, in the Prometheus text format.

`add_prometheus(app, backend, auth)` gives one app its own `CollectorRegistry` (never the
process-global one, so two apps in one process keep their own counts) holding

- `RunCollector`: at scrape time, each run's status and its latest metrics record, read through
  the backend like the REST routes read them. Nothing is cached between scrapes and only the
  latest record is read (`controller.metrics(step - 1, 1)`), so a scrape costs two controller
  calls per run. A run whose state cannot be read is skipped and counted in
  `counterpoint_runs_unreadable`; the scrape itself never fails for one run.
- the request metrics, recorded by `RequestMetrics` (an ASGI middleware) for every request by
  route template (`/v1/runs/{run_id}/schedule`, never the raw path): label values stay bounded
  whatever paths clients send; a path no route matches is `<unmatched>`.

/metrics needs a viewer (or operator) token like every read route; Prometheus sends one
(`authorization` in a scrape config; the PodMonitor in k8s/monitoring/). With auth disabled
(loopback only) it is open like everything else. `exported_names()` lists every sample name a
scrape can carry; the Grafana dashboard's test checks its queries against it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from counterpoint.services.auth import Auth, Principal
from counterpoint.services.backend import Backend
from counterpoint.services.errors import error_responses
from counterpoint.trainer.curriculum.metric_names import DOMAIN_METRICS

log = logging.getLogger(__name__)

DOMAIN_FIGURES: dict[str, str] = {
    "reward_mean": "counterpoint_domain_reward_mean",
    "accuracy": "counterpoint_domain_accuracy_ratio",
    "entropy_mean": "counterpoint_domain_entropy_mean_nats",
    "distinct_2": "counterpoint_domain_distinct_2_ratio",
    "semantic_diversity": "counterpoint_domain_semantic_diversity",
}
"""Per-domain keys of a metrics record (`record["domains"][d]`) → the gauge, labelled run and domain,
that shows the latest record's value. A key the record lacks (or holds as null) gives no sample."""

RUN_GAUGES: dict[str, str] = {
    "counterpoint_run_last_step": "The last step the run reported metrics for.",
    "counterpoint_run_schedule_version": "The run's latest schedule version (each operator change makes one).",
    "counterpoint_run_applied_schedule_version": "The schedule version the run's driver last planned a step with.",
    "counterpoint_run_paused": "1 while the run, or its active stage, is paused; else 0.",
    "counterpoint_run_stages": "Stages in the run's schedule.",
    "counterpoint_run_stages_finished": "Stages of the run's schedule that are finished.",
    "counterpoint_run_last_report_timestamp_seconds": "Unix time of the run's latest metrics record.",
}
"""Gauges labelled `run` only."""

RUN_STATUSES = ("running", "paused", "finished")
STATUS_GAUGE = "counterpoint_run_status"
STAGE_GAUGE = "counterpoint_run_active_stage"
SCRAPE_GAUGES: dict[str, str] = {
    "counterpoint_runs": "Runs whose state this scrape read.",
    "counterpoint_runs_unreadable": "Runs this scrape skipped because their state could not be read "
    "(their REST routes answer 503; the control plane's log says why).",
    "counterpoint_runs_collect_seconds": "Seconds this scrape spent reading the runs.",
}
REQUESTS = "counterpoint_http_requests"
"""A counter: its sample is `counterpoint_http_requests_total{route, method, status}`."""
DURATION = "counterpoint_http_request_duration_seconds"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAMPLE_SUFFIXES = {
    "gauge": ("",),
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}

METRICS_DESCRIPTION = """\
The control plane's metrics in the Prometheus text format (OpenMetrics when the `Accept` header
asks for it), read at scrape time: per run and domain the latest metrics record's figures
(`counterpoint_domain_*`), per run its last step, schedule versions, paused flag and status
(`counterpoint_run_*`), and the request counts and latencies by route template
(`counterpoint_http_*`). **Auth:** a viewer or operator bearer token, like every read route
(Prometheus: `authorization` in the scrape config); open only when auth is disabled
(loopback-only mode). A run whose state cannot be read is skipped and counted in
`counterpoint_runs_unreadable`, never an error."""


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class _Families:
    """One scrape's metric families, empty until samples are added."""

    def __init__(self) -> None:
        self.domain = {
            key: GaugeMetricFamily(name, f"The latest step's {key}: {DOMAIN_METRICS[key]}.", labels=["run", "domain"])
            for key, name in DOMAIN_FIGURES.items()
        }
        self.run = {name: GaugeMetricFamily(name, text, labels=["run"]) for name, text in RUN_GAUGES.items()}
        statuses = ", ".join(RUN_STATUSES)
        self.status = GaugeMetricFamily(
            STATUS_GAUGE, f"1 for the run's status (label status: {statuses}), else 0.", labels=["run", "status"]
        )
        self.stage = GaugeMetricFamily(
            STAGE_GAUGE, "1 for the run's active stage (label stage).", labels=["run", "stage"]
        )
        self.scrape = {name: GaugeMetricFamily(name, text) for name, text in SCRAPE_GAUGES.items()}

    def all(self) -> list[Metric]:
        return [*self.domain.values(), *self.run.values(), self.status, self.stage, *self.scrape.values()]

    def add_run(self, run_id: str, status: Mapping[str, Any], record: Mapping[str, Any] | None) -> None:
        run = self.run
        values = {
            "counterpoint_run_last_step": status.get("step"),
            "counterpoint_run_schedule_version": status.get("latest_version"),
            "counterpoint_run_applied_schedule_version": status.get("applied_version"),
            "counterpoint_run_paused": float(bool(status.get("run_paused") or status.get("stage_paused"))),
            "counterpoint_run_stages": status.get("stages_total"),
            "counterpoint_run_stages_finished": status.get("stages_finished"),
            "counterpoint_run_last_report_timestamp_seconds": record.get("time") if record else None,
        }
        for name, value in values.items():
            if (v := _finite(value)) is not None:
                run[name].add_metric([run_id], v)
        current = str(status.get("status"))
        for name in (*RUN_STATUSES, *([current] if current not in RUN_STATUSES else [])):
            self.status.add_metric([run_id, name], float(name == current))
        if status.get("stage"):
            self.stage.add_metric([run_id, str(status["stage"])], 1.0)
        domains = record.get("domains") if record else None
        for domain, figures in (domains if isinstance(domains, Mapping) else {}).items():
            if not isinstance(figures, Mapping):
                continue
            for key, family in self.domain.items():
                if (v := _finite(figures.get(key))) is not None:
                    family.add_metric([run_id, str(domain)], v)


class RunCollector(Collector):
    """Reads every run of `backend` at scrape time (see the module docstring)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self._last_error: dict[str, str] = {}
        """Per unreadable run, the error last logged: each new error is logged once, not every scrape."""

    def describe(self) -> list[Metric]:
        return _Families().all()

    def collect(self) -> Iterator[Metric]:
        start = time.perf_counter()
        families, read, unreadable = _Families(), 0, 0
        try:
            runs = self.backend.list_runs()
        except Exception as err:  # a scrape shows what it can; the log says why it is empty
            log.warning("/metrics: cannot list the runs: %s", err)
            runs = []
        for run_id in runs:
            try:
                controller = self.backend.controller(run_id)
                status = controller.status()
                record = _latest_record(controller, status.get("step"))
            except Exception as err:  # ControllerStateError, BackendUnavailable, RunNotFound (deleted), ...
                unreadable += 1
                if self._last_error.get(run_id) != str(err):
                    self._last_error[run_id] = str(err)
                    log.warning("/metrics: run %s skipped, its state cannot be read: %s", run_id, err)
                continue
            self._last_error.pop(run_id, None)
            families.add_run(run_id, status, record)
            read += 1
        families.scrape["counterpoint_runs"].add_metric([], read)
        families.scrape["counterpoint_runs_unreadable"].add_metric([], unreadable)
        families.scrape["counterpoint_runs_collect_seconds"].add_metric([], time.perf_counter() - start)
        yield from families.all()


def _latest_record(controller: Any, step: Any) -> dict | None:
    """The metrics record of the run's last reported step (status "step"), reading only that one."""
    if isinstance(step, bool) or not isinstance(step, int):
        return None
    records = controller.metrics(step - 1, 1)
    return records[0] if records and records[0].get("step") == step else None


def route_template(scope: Scope) -> str:
    """The template of the route that served the request, or `<unmatched>`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if isinstance(route, Mount):
        return path.rstrip("/") + "/{path}"
    return path or "/"


class RequestMetrics:
    """ASGI middleware: counts each HTTP request and times it, by route template, method and status.
    An exception out of the app counts as a 500 (Starlette's outermost handler answers it so)."""

    def __init__(self, app: ASGIApp, requests: Counter, duration: Histogram):
        self.app, self.requests, self.duration = app, requests, duration

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            method = scope.get("method", "")
            method = method if method in METHODS else "other"
            self.requests.labels(route, method, str(status)).inc()
            self.duration.labels(route, method).observe(time.perf_counter() - start)


def request_metrics(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    """The request counter and latency histogram, registered in `registry`."""
    requests = Counter(
        REQUESTS,
        "HTTP requests answered, by route template, method and status code.",
        ["route", "method", "status"],
        registry=registry,
    )
    duration = Histogram(
        DURATION,
        "Seconds from a request's arrival to the end of its answer, by route template and method.",
        ["route", "method"],
        registry=registry,
        buckets=LATENCY_BUCKETS,
    )
    return requests, duration


def add_prometheus(app: FastAPI, backend: Backend, auth: Auth) -> CollectorRegistry:
    """Add `GET /metrics` and the request-metrics middleware to `app` (before it serves: Starlette
    refuses middleware afterwards). Returns the app's registry (also `app.state.prometheus`)."""
    registry = CollectorRegistry()
    registry.register(RunCollector(backend))
    requests, duration = request_metrics(registry)
    app.add_middleware(RequestMetrics, requests=requests, duration=duration)
    app.state.prometheus = registry
    viewer = auth.dependency("viewer")

    @app.get(
        "/metrics",
        tags=["observe"],
        summary="Prometheus metrics",
        description=METRICS_DESCRIPTION,
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "The metrics."},
            401: {  # JSON like every error, although the route's own answer is text
                "description": error_responses(401)[401]["description"],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            },
        },
    )
    def prometheus_metrics(request: Request, who: Principal = Depends(viewer)) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), media_type=content_type)

    return registry


class _NoRuns:
    def list_runs(self) -> list[str]:
        return []


def exported_names() -> frozenset[str]:
    """Every sample name a scrape of /metrics can carry (histogram buckets, counter totals, ...)."""
    registry = CollectorRegistry()
    registry.register(RunCollector(_NoRuns()))  # type: ignore[arg-type]
    request_metrics(registry)
    return frozenset(f.name + suffix for f in registry.collect() for suffix in _SAMPLE_SUFFIXES[f.type])

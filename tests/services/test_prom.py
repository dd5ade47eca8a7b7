"""GET /metrics of the control plane (services/prom.py), in process: the per-run and per-domain
gauges equal the last record a run reported through the real ScheduleController (the way the
training loop's planner reports), request counters by route template, auth, unreadable runs,
one registry per app, and the OpenAPI entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from counterpoint.services.app import create_app
from counterpoint.services.auth import Auth
from counterpoint.services.backend import BackendUnavailable, LocalBackend
from counterpoint.services.prom import DOMAIN_FIGURES, UNMATCHED, exported_names
from counterpoint.trainer.curriculum.controller import ScheduleController
from counterpoint.trainer.curriculum.planner import SchedulePlanner

OPERATOR, VIEWER = "op-token-0123456789abcdef", "viewer-token-0123456789ab"
OP = {"Authorization": f"Bearer {OPERATOR}"}
VIEW = {"Authorization": f"Bearer {VIEWER}"}
STAGES = [
    {"name": "structured", "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0}}},
    {"name": "creative", "domains": {"creative": {"weight": 1.0}}},
]
STEP_1 = {  # code's accuracy is null and math has no semantic_diversity: neither gives a sample
    "math": {"reward_mean": 0.25, "accuracy": 0.5, "entropy_mean": 1.25, "distinct_2": 0.75, "samples": 8},
    "code": {"reward_mean": -0.5, "accuracy": None, "entropy_mean": 0.875, "semantic_diversity": 0.3},
}
STEP_2 = {
    "math": {"reward_mean": 0.625, "accuracy": 0.75, "entropy_mean": 1.0, "distinct_2": 0.625},
    "code": {"reward_mean": 0.125, "accuracy": 0.25, "entropy_mean": 0.5, "semantic_diversity": 0.2},
}


def auth() -> Auth:
    return Auth([("alice", OPERATOR, "operator"), ("victor", VIEWER, "viewer")])


@pytest.fixture
def runs(tmp_path) -> Path:
    ScheduleController(tmp_path / "demo", STAGES, domains=["math", "code", "creative"])
    return tmp_path


@pytest.fixture
def client(runs) -> TestClient:
    return TestClient(create_app(LocalBackend(runs), auth()))


def train_step(runs: Path, step: int, domains: dict) -> None:
    """What the training loop does at a step: plan it through the planner, then report its record."""
    planner = SchedulePlanner(ScheduleController(runs / "demo"), prompts_per_step=60)
    assert planner.plan(step).status == "train"
    planner.report(step, {"step": step, "domains": domains})


def scrape(client: TestClient, headers: dict | None = None) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label items): value} of one scrape."""
    r = client.get("/metrics", headers=VIEW if headers is None else headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def domain_figures(samples: dict, run: str = "demo") -> dict[str, dict[str, float]]:
    """{domain: {record key: value}} from the counterpoint_domain_* gauges of one run."""
    key_of = {name: key for key, name in DOMAIN_FIGURES.items()}
    out: dict[str, dict[str, float]] = {}
    for (name, labels), value in samples.items():
        labels = dict(labels)
        if name in key_of and labels["run"] == run:
            out.setdefault(labels["domain"], {})[key_of[name]] = value
    return out


def expected(record_domains: dict) -> dict[str, dict[str, float]]:
    return {d: {k: v for k, v in m.items() if k in DOMAIN_FIGURES and v is not None} for d, m in record_domains.items()}


def run_value(samples: dict, name: str, run: str = "demo", **labels) -> float | None:
    return samples.get((name, tuple(sorted({"run": run, **labels}.items()))))


def requests_total(samples: dict, route: str, method: str = "GET", status: str = "200") -> float:
    key = ("counterpoint_http_requests_total", (("method", method), ("route", route), ("status", status)))
    return samples.get(key, 0.0)


# --- the runs' figures ---


def test_domain_figures_are_the_last_reported_record(client, runs):
    before = scrape(client)
    assert domain_figures(before) == {} and run_value(before, "counterpoint_run_last_step") is None
    assert run_value(before, "counterpoint_run_schedule_version") == 1

    train_step(runs, 1, STEP_1)
    (record,) = client.get("/v1/runs/demo/metrics", headers=VIEW).json()["records"]
    samples = scrape(client)
    assert domain_figures(samples) == expected(record["domains"])
    assert "accuracy" not in domain_figures(samples)["code"]  # null in the record: no sample
    assert "semantic_diversity" not in domain_figures(samples)["math"]  # absent: no sample
    assert run_value(samples, "counterpoint_run_last_step") == 1
    assert run_value(samples, "counterpoint_run_last_report_timestamp_seconds") == pytest.approx(record["time"])

    train_step(runs, 2, STEP_2)
    samples = scrape(client)
    last = client.get("/v1/runs/demo/metrics?since=1", headers=VIEW).json()["records"][-1]
    assert last["step"] == 2 and domain_figures(samples) == expected(last["domains"]) == expected(STEP_2)
    assert run_value(samples, "counterpoint_run_last_step") == 2


def test_run_versions_pause_and_status(client, runs):
    train_step(runs, 1, STEP_1)
    samples = scrape(client)
    assert run_value(samples, "counterpoint_run_schedule_version") == 1
    assert run_value(samples, "counterpoint_run_applied_schedule_version") == 1
    assert run_value(samples, "counterpoint_run_paused") == 0
    assert run_value(samples, "counterpoint_run_status", status="running") == 1
    assert run_value(samples, "counterpoint_run_status", status="paused") == 0
    assert run_value(samples, "counterpoint_run_active_stage", stage="structured") == 1
    assert run_value(samples, "counterpoint_run_stages") == 2
    assert run_value(samples, "counterpoint_run_stages_finished") == 0

    assert client.post("/v1/runs/demo/pause", headers=OP).status_code == 200
    samples = scrape(client)
    assert run_value(samples, "counterpoint_run_schedule_version") == 2
    assert run_value(samples, "counterpoint_run_applied_schedule_version") == 1  # the driver has not planned since
    assert run_value(samples, "counterpoint_run_paused") == 1
    assert run_value(samples, "counterpoint_run_status", status="paused") == 1
    assert run_value(samples, "counterpoint_run_status", status="running") == 0

    client.post("/v1/runs/demo/resume", headers=OP)
    train_step(runs, 2, STEP_2)
    samples = scrape(client)
    assert run_value(samples, "counterpoint_run_applied_schedule_version") == 3
    assert run_value(samples, "counterpoint_run_paused") == 0


def test_an_unreadable_run_is_counted_not_a_500(client, runs):
    train_step(runs, 1, STEP_1)
    (runs / "broken").mkdir()
    (runs / "broken" / "controller.json").write_text("{")
    samples = scrape(client)
    assert samples[("counterpoint_runs", ())] == 1 and samples[("counterpoint_runs_unreadable", ())] == 1
    assert not [k for k in samples if ("run", "broken") in k[1]]
    assert domain_figures(samples)  # the readable run is still there


def test_a_backend_that_fails_gives_an_empty_scrape_not_a_500(runs):
    class Failing(LocalBackend):
        def controller(self, run_id):
            raise BackendUnavailable("the actor is dead")

    samples = scrape(TestClient(create_app(Failing(runs), auth())))
    assert samples[("counterpoint_runs", ())] == 0 and samples[("counterpoint_runs_unreadable", ())] == 1

    class NoList(LocalBackend):
        def list_runs(self):
            raise OSError("the volume is gone")

    samples = scrape(TestClient(create_app(NoList(runs), auth())))
    assert samples[("counterpoint_runs", ())] == 0 and samples[("counterpoint_runs_unreadable", ())] == 0


# --- the request metrics ---


def test_requests_are_counted_by_route_template(client):
    first = scrape(client)
    for _ in range(3):
        assert client.get("/v1/runs/demo/schedule", headers=VIEW).status_code == 200
    client.get("/v1/runs/nope/schedule", headers=VIEW)  # 404 from the route: still its template
    client.get("/no/such/path/12345", headers=VIEW)
    client.get("/v1/runs/demo/schedule")  # 401
    client.request("BREW", "/healthz")  # an unknown method: 405, counted as "other"
    samples = scrape(client)

    template = "/v1/runs/{run_id}/schedule"
    assert requests_total(samples, template) - requests_total(first, template) == 3
    assert requests_total(samples, template, status="404") == 1
    assert requests_total(samples, template, status="401") == 1
    assert requests_total(samples, UNMATCHED, status="404") == 1
    assert requests_total(samples, "/healthz", method="other", status="405") == 1
    assert requests_total(samples, "/metrics") == requests_total(first, "/metrics") + 1 == 1  # scrapes count too
    routes = {dict(labels)["route"] for name, labels in samples if name.startswith("counterpoint_http_")}
    assert not [r for r in routes if "demo" in r or "nope" in r or "12345" in r]  # never a raw path
    count = ("counterpoint_http_request_duration_seconds_count", (("method", "GET"), ("route", template)))
    assert samples[count] == 5
    bucket = "counterpoint_http_request_duration_seconds_bucket"
    assert samples[(bucket, (("le", "+Inf"), ("method", "GET"), ("route", template)))] == 5


def test_a_mount_and_a_server_error_are_labelled(runs):
    app = create_app(LocalBackend(runs), auth())

    async def static(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    app.mount("/static", static)

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/static/a/b.js").status_code == 200
    assert client.get("/boom").status_code == 500
    samples = scrape(client)
    assert requests_total(samples, "/static/{path}") == 1
    assert requests_total(samples, "/boom", status="500") == 1


def test_each_app_has_its_own_registry(runs):
    a, b = (TestClient(create_app(LocalBackend(runs), auth())) for _ in range(2))
    for _ in range(2):
        a.get("/healthz")
    assert requests_total(scrape(a), "/healthz") == 2
    assert requests_total(scrape(b), "/healthz") == 0


# --- auth and the OpenAPI entry ---


def test_metrics_need_a_viewer_token(client, runs):
    r = client.get("/metrics")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"] == 'Bearer realm="counterpoint"'
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert scrape(client, VIEW) and scrape(client, OP)
    open_app = TestClient(create_app(LocalBackend(runs), Auth.disabled_mode(), host="127.0.0.1"))
    assert scrape(open_app, {})  # loopback-only mode: open like every route


def test_openmetrics_when_asked(client):
    r = client.get("/metrics", headers={**VIEW, "Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_openapi_entry(client):
    op = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert op["tags"] == ["observe"] and op["security"] == [{"HTTPBearer": []}]
    assert "viewer" in op["description"] and "auth is disabled" in op["description"]
    assert list(op["responses"]["200"]["content"]) == ["text/plain"]
    assert list(op["responses"]["401"]["content"]) == ["application/json"]


def test_exported_names_cover_every_scraped_sample(client, runs):
    train_step(runs, 1, STEP_1)
    client.get("/healthz")
    names = {name for name, _ in scrape(client)}
    assert names <= exported_names()
    assert {"counterpoint_http_requests_total", "counterpoint_http_request_duration_seconds_bucket"} <= names
    assert all(n.startswith("counterpoint_") for n in exported_names())

"""The REST control plane in-process (FastAPI's TestClient over LocalBackend): auth by role,
optimistic concurrency, every validation case with its status and field, body limits, probes,
the OpenAPI document, and the CLI against the same app."""

import json
import logging

import pytest
from fastapi.testclient import TestClient

from counterpoint.services import cli
from counterpoint.services.app import create_app
from counterpoint.services.auth import Auth, AuthConfigError, Principal
from counterpoint.services.backend import LocalBackend
from counterpoint.services.client import ControlPlaneClient
from counterpoint.trainer.curriculum.controller import ScheduleController

OPERATOR, VIEWER = "op-token-0123456789abcdef", "viewer-token-0123456789ab"
OP = {"Authorization": f"Bearer {OPERATOR}"}
VIEW = {"Authorization": f"Bearer {VIEWER}"}
STAGES = [
    {
        "name": "structured",
        "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0}},
        "advance": {"type": "steps", "steps": 2},
    },
    {"name": "creative", "domains": {"creative": {"weight": 1.0}}},
]


def auth() -> Auth:
    return Auth([("alice", OPERATOR, "operator"), ("victor", VIEWER, "viewer")])


@pytest.fixture
def runs(tmp_path):
    ScheduleController(tmp_path / "demo", STAGES, domains=["math", "code", "creative"])
    return tmp_path


@pytest.fixture
def client(runs):
    return TestClient(create_app(LocalBackend(runs), auth()))


def schedule(client):
    return client.get("/v1/runs/demo/schedule", headers=VIEW).json()


# --- auth ---


def test_reads_need_a_token_and_writes_an_operator(client):
    r = client.get("/v1/runs")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="counterpoint"'
    r = client.get("/v1/runs", headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert client.get("/v1/runs", headers={"Authorization": f"Basic {OPERATOR}"}).status_code == 401
    assert client.get("/v1/runs", headers=VIEW).status_code == 200
    r = client.post("/v1/runs/demo/pause", headers=VIEW)
    assert r.status_code == 403 and r.json()["error"] == "forbidden" and "victor" in r.json()["detail"]
    assert client.post("/v1/runs/demo/pause", headers=OP).status_code == 200
    assert client.get("/v1/runs/demo/audit", headers=VIEW).json()["entries"][-1]["author"] == "alice"


def test_tokens_never_reach_the_log(client, caplog):
    caplog.set_level(logging.DEBUG)
    client.get("/v1/runs", headers={"Authorization": "Bearer a-wrong-token-value-here"})
    client.post("/v1/runs/demo/pause", headers=OP)
    client.post("/v1/runs/demo/resume", headers=VIEW)
    assert caplog.text  # something was logged
    for secret in (OPERATOR, VIEWER, "a-wrong-token-value-here"):
        assert secret not in caplog.text
    assert OPERATOR not in repr(auth())


def test_token_sources(tmp_path):
    f = tmp_path / "tokens.yaml"
    f.write_text(
        f"tokens:\n  - {{name: ops, token: {OPERATOR}, role: operator}}\n  - {{name: dash, token: {VIEWER}, role: viewer}}\n"  # noqa: E501
    )
    a = Auth.from_env({"COUNTERPOINT_TOKENS_FILE": str(f)})
    assert a.authenticate(OPERATOR) == Principal("ops", "operator") and a.authenticate(VIEWER).role == "viewer"
    assert a.authenticate("nope") is None
    j = tmp_path / "tokens.json"
    j.write_text(json.dumps({"tokens": [{"name": "ops", "token": OPERATOR, "role": "operator"}]}))
    assert Auth.from_file(j).authenticate(OPERATOR).name == "ops"
    e = Auth.from_env({"COUNTERPOINT_OPERATOR_TOKEN": OPERATOR, "COUNTERPOINT_VIEWER_TOKEN": VIEWER})
    assert e.authenticate(VIEWER) == Principal("viewer", "viewer")
    for bad, match in [
        ([("a", "short", "operator")], "at least 16"),
        ([("a", OPERATOR, "admin")], "role must be"),
        ([("a", OPERATOR, "operator"), ("a", VIEWER, "viewer")], "used twice"),
        ([("a", OPERATOR, "operator"), ("b", OPERATOR, "viewer")], "listed twice"),
        ([], "no tokens"),
    ]:
        with pytest.raises(AuthConfigError, match=match) as err:
            Auth(bad)
        assert OPERATOR not in str(err.value)
    (tmp_path / "bad.yaml").write_text("tokens: 3\n")
    with pytest.raises(AuthConfigError, match="expected"):
        Auth.from_file(tmp_path / "bad.yaml")


def test_auth_disabled_only_on_loopback(runs):
    with pytest.raises(ValueError, match="loopback"):
        create_app(LocalBackend(runs), Auth.disabled_mode(), host="0.0.0.0")
    app = create_app(LocalBackend(runs), Auth.disabled_mode(), host="127.0.0.1")
    r = TestClient(app).post("/v1/runs/demo/pause")
    assert r.status_code == 200
    create_app(LocalBackend(runs), Auth.disabled_mode(), host="::1")
    create_app(LocalBackend(runs), auth(), host="0.0.0.0")  # with tokens any address is fine


# --- reads ---


def test_runs_status_and_schedule(client):
    runs = client.get("/v1/runs", headers=VIEW).json()
    assert [r["run_id"] for r in runs["runs"]] == ["demo"] and runs["unavailable"] == []
    status = client.get("/v1/runs/demo", headers=VIEW).json()
    assert status["stage"] == "structured" and status["latest_version"] == 1 and status["applied_version"] is None
    view = schedule(client)
    assert [s["name"] for s in view["stages"]] == ["structured", "creative"]
    assert [p["status"] for p in view["progress"]] == ["active", "pending"]
    client.post("/v1/runs/demo/pause", headers=OP)
    old = client.get("/v1/runs/demo/schedule?version=1", headers=VIEW).json()
    assert old["version"] == 1 and old["latest_version"] == 2 and old["paused"] is False
    assert client.get("/v1/runs/demo/schedule?version=9", headers=VIEW).status_code == 404


def test_metrics_and_applied_versions(client, runs):
    driver = ScheduleController(runs / "demo")  # the training run's own controller on the folder
    driver.next_plan(1, 60)
    driver.report(1, {"math": {"reward_mean": 0.25}})
    client.patch("/v1/runs/demo/stages/structured/domains/math", headers=OP, json={"weight": 1.0})
    driver.next_plan(2, 60)
    driver.report(2, {"math": {"reward_mean": 0.5}})
    records = client.get("/v1/runs/demo/metrics?since=0", headers=VIEW).json()["records"]
    assert [(r["step"], r["schedule_version"]) for r in records] == [(1, 1), (2, 2)]
    assert (
        client.get("/v1/runs/demo/metrics?since=1", headers=VIEW).json()["records"][0]["domains"]["math"]["reward_mean"]
        == 0.5
    )
    status = client.get("/v1/runs/demo", headers=VIEW).json()
    assert (status["step"], status["applied_version"], status["latest_version"]) == (2, 2, 3)
    # steps 1 and 2 of the "structured" steps-rule: the stage advanced, a new version
    assert client.get("/v1/runs/demo/audit?since=2", headers=VIEW).json()["entries"][0]["action"] == "advance"


# --- concurrency ---


def test_two_writers_with_the_same_base_version(client):
    first = client.patch(
        "/v1/runs/demo/stages/structured/domains/math", headers=OP, json={"weight": 1.0, "base_version": 1}
    )
    second = client.patch(
        "/v1/runs/demo/stages/structured/domains/code", headers=OP, json={"weight": 3.0, "base_version": 1}
    )
    assert first.status_code == 200 and first.json()["version"] == 2
    assert second.status_code == 409
    assert second.json() == {
        "detail": "base_version: the schedule is at version 2, not 1; read it again and re-apply your change",
        "error": "stale_version",
        "field": "base_version",
        "current_version": 2,
    }
    view = schedule(client)
    put = client.put("/v1/runs/demo/schedule", headers=OP, json={"base_version": 1, "stages": view["stages"]})
    assert put.status_code == 409 and put.json()["current_version"] == 2


# --- validation: each case, its status and the field named ---


def reorder(client, stages, **extra):
    return client.put(
        "/v1/runs/demo/schedule",
        headers=OP,
        json={"base_version": schedule(client)["version"], "stages": stages, **extra},
    )


def test_reorder_and_its_refusals(client):
    s, c = schedule(client)["stages"]
    r = reorder(client, [c, s], reason="creative first")
    assert r.status_code == 200 and [x["name"] for x in r.json()["stages"]] == ["creative", "structured"]
    assert r.json()["progress"][0]["status"] == "active"
    r = reorder(client, [c])
    assert r.status_code == 422 and r.json()["field"] == "stages" and "'structured' is missing" in r.json()["detail"]
    r = reorder(client, [c, s, c])
    assert r.status_code == 422 and r.json()["field"] == "stages[2].name" and "appears twice" in r.json()["detail"]
    new = {"name": "extra", "domains": {"math": {}}}
    r = reorder(client, [c, s, new])
    assert (
        r.status_code == 422 and r.json()["field"] == "stages[2].name" and "unknown stage 'extra'" in r.json()["detail"]
    )
    assert reorder(client, [c, s, new], allow_stage_changes=True).status_code == 200
    assert reorder(client, [c, s], allow_stage_changes=True).status_code == 200  # drop the pending "extra"


@pytest.mark.parametrize(
    "domains, field, fragment",
    [
        ({"math": {"weight": -1}}, "stages[0].domains.math.weight", "greater than or equal to 0"),
        ({"math": {"weight": 0}, "code": {"weight": 0}}, "stages[0].domains", "all weights are zero"),
        ({"poetry": {"weight": 1}}, "stages[0].domains.poetry", "unknown domain 'poetry'"),
        (
            {"math": {"weight": 1, "entropy_target": -0.1}},
            "stages[0].domains.math.entropy_target",
            "greater than or equal to 0",
        ),
    ],
)
def test_put_validation_names_the_field(client, domains, field, fragment):
    stages = schedule(client)["stages"]
    stages[0]["domains"] = domains
    r = reorder(client, stages, allow_stage_changes=True)
    assert r.status_code == 422 and r.json()["field"] == field and fragment in r.json()["detail"], r.json()


@pytest.mark.parametrize(
    "advance, field",
    [
        ({"type": "plateau", "domain": "math", "metric": "reward_maen"}, "stages[0].advance.metric"),
        (
            {"type": "entropy", "domain": "math", "threshold": 0.2, "metric": "reward_maen"},
            "stages[0].advance.metric",
        ),
    ],
)
def test_a_rule_on_a_metric_the_run_never_reports_is_refused(client, advance, field):
    stages = schedule(client)["stages"]
    stages[0]["advance"] = advance
    r = reorder(client, stages)
    assert r.status_code == 422 and r.json()["field"] == field, r.json()
    assert "unknown per-domain metric 'reward_maen'" in r.json()["detail"] and "'reward_mean'" in r.json()["detail"]
    assert schedule(client)["version"] == 1  # nothing changed
    stages[0]["advance"]["metric"] = "reward_mean"
    assert reorder(client, stages, allow_stage_changes=True).status_code == 200


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_weights_are_refused(client, raw):
    body = f'{{"weight": {raw}}}'  # Python's json accepts these literals, so they reach validation
    r = client.patch(
        "/v1/runs/demo/stages/structured/domains/math", headers={**OP, "Content-Type": "application/json"}, content=body
    )
    assert r.status_code == 422 and r.json()["field"] == "weight" and "finite" in r.json()["detail"]


def test_patch_refusals(client):
    url = "/v1/runs/demo/stages/{}/domains/{}"
    r = client.patch(url.format("nope", "math"), headers=OP, json={"weight": 1})
    assert r.status_code == 404 and r.json()["field"] == "stage" and "no stage 'nope'" in r.json()["detail"]
    r = client.patch(url.format("structured", "creative"), headers=OP, json={"weight": 1})
    assert r.status_code == 404 and r.json()["field"] == "domain"
    r = client.patch(url.format("structured", "math"), headers=OP, json={"weight": -2})
    assert r.status_code == 422 and r.json()["field"] == "weight"
    assert client.patch(url.format("structured", "math"), headers=OP, json={"weight": 0}).status_code == 200
    r = client.patch(url.format("structured", "code"), headers=OP, json={"weight": 0})
    assert r.status_code == 422 and r.json()["field"] == "weight" and "all weights are zero" in r.json()["detail"]
    r = client.patch(url.format("structured", "code"), headers=OP, json={})
    assert r.status_code == 422 and "give a weight" in r.json()["detail"]
    r = client.patch(url.format("structured", "code"), headers=OP, json={"wieght": 1})
    assert r.status_code == 422 and r.json()["field"] == "wieght"
    r = client.patch(url.format("structured", "code"), headers=OP, json={"entropy_target": 0.3})
    assert r.json()["stages"][0]["domains"]["code"]["entropy_target"] == 0.3
    r = client.patch(url.format("structured", "code"), headers=OP, json={"entropy_target": None})
    assert r.json()["stages"][0]["domains"]["code"]["entropy_target"] is None


def test_unknown_run_and_bad_path(client):
    r = client.get("/v1/runs/missing", headers=VIEW)
    assert r.status_code == 404 and r.json()["field"] == "run_id"
    assert client.get("/v1/runs/..%2Fetc", headers=VIEW).status_code in (404, 422)
    assert client.post("/v1/runs/missing/pause", headers=OP).status_code == 404
    assert client.get("/v1/nothing", headers=VIEW).status_code == 404
    assert client.delete("/v1/runs/demo", headers=OP).status_code == 405


def test_finished_stage_and_finished_run(client, runs):
    driver = ScheduleController(runs / "demo")
    for step in (1, 2):
        driver.next_plan(step, 60)
        driver.report(step, {})  # "structured" finishes after 2 steps
    r = client.post("/v1/runs/demo/resume", headers=OP, json={"stage": "structured"})
    assert r.status_code == 409 and r.json()["field"] == "stage" and "finished" in r.json()["detail"]
    driver.finish()
    r = client.post("/v1/runs/demo/pause", headers=OP)
    assert r.status_code == 409 and r.json()["field"] == "run" and "finished" in r.json()["detail"]
    r = client.patch("/v1/runs/demo/stages/creative/domains/creative", headers=OP, json={"weight": 2})
    assert r.status_code == 409
    assert client.get("/v1/runs/demo", headers=VIEW).json()["status"] == "finished"


def test_bodies_over_the_limit_are_refused(client):
    big = {"base_version": 1, "stages": STAGES, "reason": "x" * 70_000}
    r = client.put("/v1/runs/demo/schedule", headers=OP, json=big)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(20):
            yield b"x" * 4096

    r = client.put("/v1/runs/demo/schedule", headers={**OP, "Content-Type": "application/json"}, content=chunks())
    assert r.status_code == 413
    r = client.put("/v1/runs/demo/schedule", headers={**OP, "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 422
    assert schedule(client)["version"] == 1


def test_pause_resume_advance(client):
    assert client.post("/v1/runs/demo/pause", headers=OP, json={"stage": "creative", "reason": "judge down"}).json()[
        "stages"
    ][1]["paused"]
    assert client.post("/v1/runs/demo/resume", headers=OP, json={"stage": "creative"}).status_code == 200
    r = client.post("/v1/runs/demo/advance", headers=OP, json={"base_version": 3, "reason": "enough"})
    assert r.status_code == 200 and r.json()["progress"][0]["status"] == "finished"
    assert client.post("/v1/runs/demo/pause", headers=OP, json={"stage": "bad name!"}).status_code == 422


# --- probes and the OpenAPI document ---


def test_health_and_readiness(client, tmp_path):
    assert client.get("/healthz").json() == {"status": "ok", "detail": {}}
    assert client.get("/readyz").json()["status"] == "ready"
    gone = TestClient(create_app(LocalBackend(tmp_path / "no-such-dir"), auth()))
    assert gone.get("/readyz").status_code == 503


def test_unreadable_run_is_503_not_500(client, runs):
    (runs / "broken").mkdir()
    (runs / "broken" / "controller.json").write_text("{")
    r = client.get("/v1/runs/broken", headers=VIEW)
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    listed = client.get("/v1/runs", headers=VIEW).json()
    assert [u["run_id"] for u in listed["unavailable"]] == ["broken"]


def test_openapi_documents_every_route_and_field(client):
    doc = client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("description") and op.get("summary"), f"{method.upper()} {path}"
    for name, schema in doc["components"]["schemas"].items():
        if name.startswith(("HTTPValidationError", "ValidationError")):
            continue
        for field, prop in schema.get("properties", {}).items():
            assert "description" in prop or "$ref" in prop, f"{name}.{field}"
    assert doc["components"]["schemas"]["ScheduleReplace"]["examples"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


# --- the CLI against the same app ---


@pytest.fixture
def run_cli(client, monkeypatch, capsys):
    monkeypatch.setattr(
        cli, "ControlPlaneClient", lambda url, token: ControlPlaneClient(url, token, http=TestClient(client.app))
    )

    def run(*argv, token=OPERATOR):
        import argparse

        parser = argparse.ArgumentParser(prog="counterpoint")
        cli.register(parser.add_subparsers(dest="command"))
        code = cli.main_for(parser.parse_args([*argv, "--token", token]))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_commands(run_cli):
    code, out, _ = run_cli("schedule", "show")  # the only run is used without --run
    assert code == 0 and "1. structured [rl] active" in out
    code, out, _ = run_cli("schedule", "reorder", "creative", "structured", "--run", "demo", "--reason", "swap")
    assert code == 0 and "1. creative" in out
    assert run_cli("schedule", "pause", "--run", "demo")[0] == 0
    assert run_cli("schedule", "resume", "--run", "demo")[0] == 0
    code, out, _ = run_cli("schedule", "set-weight", "structured", "math", "0.5", "--run", "demo")
    assert code == 0 and "math 0.5" in out
    code, out, _ = run_cli("schedule", "set-entropy-target", "structured", "code", "0.3", "--run", "demo", "--json")
    assert code == 0 and json.loads(out)["stages"][1]["domains"]["code"]["entropy_target"] == 0.3
    assert run_cli("schedule", "set-entropy-target", "structured", "code", "none", "--run", "demo")[0] == 0
    code, out, _ = run_cli("schedule", "audit", "--run", "demo")
    assert code == 0 and "alice  replace" in out and "-- swap" in out
    assert run_cli("schedule", "status", "--run", "demo")[0] == 0


def test_cli_errors_exit_non_zero_with_the_api_message(run_cli):
    code, _, err = run_cli("schedule", "set-weight", "structured", "math", "-1", "--run", "demo")
    assert code == 2 and "422" in err and "weight" in err
    code, _, err = run_cli("schedule", "pause", "--run", "demo", "--base-version", "7")
    assert code == 3 and "409" in err and "version 1, not 7" in err
    code, _, err = run_cli("schedule", "pause", "--run", "demo", token=VIEWER)
    assert code == 4 and "403" in err
    code, _, err = run_cli("schedule", "reorder", "nope", "--run", "demo")
    assert code == 5 and "unknown stage 'nope'" in err
    code, _, err = run_cli("schedule", "resume", "--stage", "ghost", "--run", "demo")
    assert code == 5 and "404" in err


def test_post_runs_validates_then_submits(runs):
    submitted = []

    def fake_submit(cfg, name):  # a fake Jobs API: records what it was given
        submitted.append((cfg, name))
        return name or f"{cfg.run.name}-1"

    api = TestClient(create_app(LocalBackend(runs), auth(), submit=fake_submit))
    body = {"config": {"run": {"name": "demo", "steps": 3}}, "name": "demo-7"}
    assert api.post("/v1/runs", json=body, headers={"Authorization": f"Bearer {VIEWER}"}).status_code == 403
    ok = api.post("/v1/runs", json=body, headers=OP)
    assert ok.status_code == 201 and ok.json()["job_id"] == "demo-7"
    assert submitted[0][0].run.steps == 3 and submitted[0][1] == "demo-7"
    bad = api.post("/v1/runs", json={"config": {"learner": {"rankz": 2}}}, headers=OP)
    assert bad.status_code == 422 and bad.json()["field"] == "config.learner.rankz"
    assert len(submitted) == 1  # nothing submitted for a bad config
    unconfigured = TestClient(create_app(LocalBackend(runs), auth()))
    assert unconfigured.post("/v1/runs", json=body, headers=OP).status_code == 405

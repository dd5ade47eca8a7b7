"""A domain's rows from the user's data: reading files and saved datasets, mapping their fields to
what the domain's kind needs, and the held-out split.

Everything here runs in the driver before any actor starts (`rollout.domains.check_sources`), so a
missing file, a misnamed field or an empty split is a `DataError` naming the config field, the file
and the first bad row. Rows are plain Python values (dicts of str, numbers, lists).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from counterpoint.rollout.domain_config import EvalFile, EvalFraction, EvalSplitName, FileSource, HfDiskSource

FILE_TYPES = (".jsonl", ".json", ".csv", ".parquet")


class DataError(ValueError):
    """The user's data cannot be used; the message names the field to fix, the file and the row."""


REQUIRED = {"math": ("prompt", "answer"), "code": ("prompt", "tests", "entry_point"), "creative": ("prompt",)}
"""The fields each kind reads from a row (besides the optional topic and demonstration)."""
REQUIRED["python"] = ("prompt",)


@dataclass(frozen=True)
class Rows:
    """A domain's rows, split: each row with its 1-based number in the file it came from."""

    train: list[tuple[int, dict]]
    eval: list[tuple[int, dict]]
    train_file: Path
    eval_file: Path


def read_file(path: Path) -> list[dict]:
    """The rows of a data file, by its extension."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DataError(f"{path} line {number}: not valid JSON ({err})") from None
        return rows
    if suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(rows, list):
            raise DataError(f"{path}: a .json data file holds a list of objects, not a {type(rows).__name__}")
        return rows
    if suffix == ".csv":
        with path.open(newline="") as f:
            return list(csv.DictReader(f))  # every value a string, as written
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise DataError(f"{path}: unknown data file type {suffix!r} (one of {', '.join(FILE_TYPES)})")


def read_saved_dataset(path: Path, split: str | None) -> list[dict]:
    """The rows of a dataset saved with `datasets`' `save_to_disk` (of `split` for a DatasetDict)."""
    if not path.is_dir():
        raise DataError(f"{path}: no such folder (a dataset saved with save_to_disk)")
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        data = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise DataError(f"{path}: not a dataset saved with save_to_disk ({err})") from None
    if isinstance(data, DatasetDict):
        if split not in data:
            raise DataError(f"{path}: no split {split!r} (splits: {', '.join(data)})")
        data = data[split]
    assert isinstance(data, Dataset)
    return data.to_list()


def _read(source: FileSource | HfDiskSource, path: Path, split: str | None) -> list[dict]:
    return read_file(path) if isinstance(source, FileSource) else read_saved_dataset(path, split)


def held_out(text: str, split: EvalFraction) -> bool:
    """Whether a row with this prompt text is held out: a seeded hash of the text, uniform in [0, 1)."""
    digest = hashlib.sha256(f"{split.seed}\n{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < split.fraction


def check_rows(where: str, kind: str, source, rows: list, path: Path, split_name: str, field: str) -> None:
    """Every row is an object with every field the kind reads, of a usable type; the first bad row
    fails naming the config field (`where`.prompt, ...), the file and the row. No rows: an error
    naming `field`, the one that chose the file."""
    if not rows:
        raise DataError(f"{where}.{field}: the {split_name} of {path} is empty")
    roles = [*REQUIRED[kind], *(r for r in ("topic", "demonstration") if getattr(source, r) is not None)]
    for number, row in rows:
        if not isinstance(row, dict):
            raise DataError(f"{where}: {path} row {number} is a {type(row).__name__}, not an object of fields")
        for role in roles:
            field = getattr(source, role)
            if field not in row:
                raise DataError(
                    f"{where}.{role}: no field {field!r} in {path} row {number} (fields: {', '.join(map(str, row))})"
                )
            problem = _value_problem(role, row[field])
            if problem:
                raise DataError(f"{where}.{role}: field {field!r} of {path} row {number} {problem}")


def _value_problem(role: str, value: Any) -> str | None:
    if value is None:
        return "is empty"
    if role in ("prompt", "entry_point", "topic", "demonstration") and not isinstance(value, str):
        return f"is a {type(value).__name__}, not a string"
    if role in ("prompt", "entry_point", "answer") and not str(value).strip():
        return "is empty"
    if role == "entry_point" and not value.isidentifier():
        return f"is {value!r}, not a function name"
    if role == "tests":
        if isinstance(value, str):
            from counterpoint.rollout.rewards.sandbox.harness import count_check_tests

            try:
                count = count_check_tests(value)
            except SyntaxError as err:
                return f"does not parse as Python ({err.msg}, line {err.lineno})"
            except StopIteration:
                return "defines no check(candidate) function"
            return None if count else "holds no test: define check(candidate) with top-level asserts"
        if not isinstance(value, list) or not value:
            return "is neither test source (a string) nor a list of [args, expected] pairs"
        if not all(isinstance(t, list | tuple) and len(t) == 2 and isinstance(t[0], list | tuple) for t in value):
            return "is a list, but not of [args, expected] pairs (args itself a list)"
    return None


_CACHE: dict[tuple, Rows] = {}


def load_rows(where: str, kind: str, source: FileSource | HfDiskSource) -> Rows:
    """The checked, split rows of a source (`where`: its config path, `domains.<name>.source`).
    Cached by the files' identity, so the driver reads each file once."""
    path = source.path
    split = source.split if isinstance(source, HfDiskSource) else None
    stamp = path.stat().st_mtime_ns if path.exists() else None
    key = (where, kind, source.model_dump_json(), stamp)
    if key in _CACHE:
        return _CACHE[key]
    try:
        rows = list(enumerate(_read(source, path, split), 1))
    except DataError as err:
        raise DataError(f"{where}.path: {err}") from None
    eval_file = path
    spec = source.eval
    if isinstance(spec, EvalFraction):
        check_rows(where, kind, source, rows, path, "data", "path")
        prompt = source.prompt
        train = [(n, r) for n, r in rows if not held_out(r[prompt], spec)]
        held = [(n, r) for n, r in rows if held_out(r[prompt], spec)]
        for name, part in (("training", train), ("held-out", held)):
            if not part:
                raise DataError(
                    f"{where}.eval.fraction: the {name} split of {path} is empty "
                    f"({len(rows)} rows, fraction {spec.fraction}); change the fraction or give eval a path"
                )
    else:
        if isinstance(spec, EvalSplitName):
            if not isinstance(source, HfDiskSource):
                raise DataError(f"{where}.eval.split: only for hf_disk sources; a file source's eval is a path")
            eval_split = spec.split
        else:
            assert isinstance(spec, EvalFile)
            eval_file, eval_split = spec.path, split
        try:
            held = list(enumerate(_read(source, eval_file, eval_split), 1))
        except DataError as err:
            raise DataError(f"{where}.eval: {err}") from None
        train = rows
        check_rows(where, kind, source, train, path, "training split", "path")
        check_rows(where, kind, source, held, eval_file, "held-out split", "eval")
    out = Rows(train, held, path, eval_file)
    _CACHE[key] = out
    return out

"""Metric loggers beside the run folder: TensorBoard, Weights & Biases, MLflow (`metrics.report_to`).

`metrics.jsonl` stays the source of truth; these backends only show the same figures as curves. The
loop calls one `MetricsLogger` (a `MultiLogger` over what `report_to` names, as verl's
`trainer.logger` and TRL's `report_to` do) with every record it writes to `metrics.jsonl`.

Tag layout (see `flatten`), one scalar per tag at global step `record["step"]`:

  <domain>/<metric>                 train per-domain figures, e.g. math/reward_mean, code/entropy_mean
  <domain>/<metric>/<key>           nested dicts joined by "/", e.g. math/reward_errors/wrong_answer
  <domain>/eval/<metric>            evaluation figures, e.g. math/eval/accuracy, math/eval/pass@4
  seconds/<phase>                   train phase times (seconds/step is the whole step)
  seconds/eval/<phase>              evaluation phase times
  schedule/version                  the curriculum plan: also schedule/prompts/<domain>,
                                    schedule/entropy_targets/<domain>
  run/<name>                        other numeric top-level fields: run/grad_norm, run/samples_per_second,
                                    run/policy_version, ... (eval records: run/eval/<name>)

None, non-finite and non-numeric values are skipped (bools count as 0/1). A record kind other than
"train" goes in the same place as "eval" does, under its own name. TensorBoard groups its page by
the part before the first "/", so each domain gets a section; a schedule change is also written as
text (TEXT tab, "schedule/changes"; stored as "schedule/changes/text_summary", the suffix torch's
SummaryWriter.add_text adds). To look, while training or after:

  tensorboard --logdir runs        # every run folder's <run>/tensorboard/, one run each

A run trained before these loggers existed (or whose event files were lost) gets its event files
back from its metrics.jsonl with `replay` (`python -m counterpoint.trainer.loggers runs/<run_id>`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

BACKENDS = ("tensorboard", "wandb", "mlflow")
"""The values `report_to` accepts."""

TENSORBOARD_DIR = "tensorboard"
"""The folder of a run's event files, inside the run folder."""

SCHEDULE_TEXT_TAG = "schedule/changes"
"""The text summary of schedule changes (event files store it as "schedule/changes/text_summary")."""

_SKIPPED_TOP_LEVEL = frozenset({"kind", "step", "update", "domains", "seconds", "schedule"})


class MetricsLogger(Protocol):
    """A backend that shows the records of metrics.jsonl: one `log` call per record, in order."""

    def log(self, record: dict) -> None:
        """Write one metrics.jsonl record (train or eval) at step `record["step"]`."""

    def close(self) -> None:
        """Flush and release the backend; the logger is not used afterwards."""


def flatten(record: dict) -> dict[str, float]:
    """The scalar tags of one metrics record, as the module docstring lays them out.

    Pure: the record is not changed. A train record's figures go under `<domain>/<metric>`,
    `seconds/<phase>`, `schedule/...` and `run/<name>`; any other kind (eval) puts its name after
    the first part: `<domain>/eval/<metric>`, `seconds/eval/<phase>`, `run/eval/<name>`.
    """
    kind = record.get("kind", "train")
    infix = "" if kind == "train" else f"{kind}/"
    tags: dict[str, float] = {}
    for domain, metrics in (record.get("domains") or {}).items():
        _flatten_into(tags, f"{domain}/{infix}", metrics)
    _flatten_into(tags, f"seconds/{infix}", record.get("seconds") or {})
    if isinstance(record.get("schedule"), Mapping):
        _flatten_into(tags, "schedule/", record["schedule"])
    top = {k: v for k, v in record.items() if k not in _SKIPPED_TOP_LEVEL}
    _flatten_into(tags, f"run/{infix}", top)
    return tags


def _flatten_into(tags: dict[str, float], prefix: str, values: Mapping) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping):
            _flatten_into(tags, f"{prefix}{key}/", value)
        elif isinstance(value, int | float) and math.isfinite(value):
            tags[f"{prefix}{key}"] = float(value)


def _require(module: str, backend: str, package: str) -> Any:
    """Import an optional backend's package, or say which pip package `report_to` needs."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"metrics.report_to includes {backend!r}, which needs the {package!r} package: pip install {package}"
        ) from e


class TensorBoardLogger:
    """Event files in `log_dir` (a run's `<run>/tensorboard/`), flushed after every record so a live
    `tensorboard --logdir runs` sees each step as it comes.

    `purge_step`: on a resume, the first step this session writes; TensorBoard then hides the
    points at or past it that the previous session wrote (metrics.jsonl drops those records too).
    """

    def __init__(self, log_dir: Path, *, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # torch.utils.tensorboard needs the tensorboard package
            raise ImportError(
                "metrics.report_to includes 'tensorboard', which needs the 'tensorboard' package: "
                "pip install tensorboard"
            ) from e
        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)
        self._schedule_version: int | None = None

    def log(self, record: dict) -> None:
        step = int(record["step"])
        for tag, value in flatten(record).items():
            self._writer.add_scalar(tag, value, global_step=step)
        schedule = record.get("schedule")
        if isinstance(schedule, Mapping) and schedule.get("version") != self._schedule_version:
            self._schedule_version = schedule.get("version")
            self._writer.add_text(SCHEDULE_TEXT_TAG, schedule_text(step, schedule), global_step=step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def schedule_text(step: int, schedule: Mapping) -> str:
    """The line written to "schedule/changes" when the plan changes (the first plan seen counts)."""
    prompts = ", ".join(f"{d} {n}" for d, n in (schedule.get("prompts") or {}).items())
    targets = ", ".join(f"{d} {t}" for d, t in (schedule.get("entropy_targets") or {}).items())
    text = f"step {step}: schedule version {schedule.get('version')}, stage {schedule.get('stage')}"
    if schedule.get("kind"):
        text += f" ({schedule['kind']})"
    if prompts:
        text += f"; prompts {prompts}"
    if targets:
        text += f"; entropy targets {targets}"
    return text


class WandbLogger:
    """A Weights & Biases run: `wandb.init` here, `run.log(flatten(record), step=record["step"])`
    per record, `run.finish()` on close. `init_kwargs` (entity, group, tags, mode, id, resume, ...)
    go to `wandb.init` as they are. W&B drops a step lower than one it already has, so a resumed
    run should be a new W&B run (the default) or resume one with `resume="allow"`."""

    def __init__(self, project: str, run_name: str, config: dict, dir: Path | None = None, **init_kwargs: Any):
        wandb = _require("wandb", "wandb", "wandb")
        if dir is not None:
            Path(dir).mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=project, name=run_name, config=config, dir=None if dir is None else str(dir), **init_kwargs
        )

    def log(self, record: dict) -> None:
        self._run.log(flatten(record), step=int(record["step"]))

    def close(self) -> None:
        self._run.finish()


_MLFLOW_BAD = re.compile(r"[^\w\-. :/]")


def mlflow_name(tag: str) -> str:
    """A tag as MLflow accepts it (letters, digits, `_ - . space : /`, no empty path parts):
    "@" becomes "_at_" (pass@4 → pass_at_4), anything else not allowed "_"."""
    name = _MLFLOW_BAD.sub("_", tag.replace("@", "_at_"))
    return "/".join(part for part in name.split("/") if part not in ("", ".", ".."))


class MLflowLogger:
    """An MLflow run: tracking URI and experiment set (None: MLflow's defaults, which read
    MLFLOW_TRACKING_URI), the run started with the flattened config as params (values cut to 500
    characters, MLflow's oldest limit), `mlflow.log_metrics` per record, the run ended on close.
    Metric names pass through `mlflow_name`, so `math/eval/pass@4` reads `math/eval/pass_at_4`."""

    def __init__(self, tracking_uri: str | None, experiment: str | None, run_name: str, config: dict):
        self._mlflow = mlflow = _require("mlflow", "mlflow", "mlflow")
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        if experiment:
            mlflow.set_experiment(experiment)
        mlflow.start_run(run_name=run_name)
        params = {mlflow_name(k): str(v)[:500] for k, v in _flat_config(config).items()}
        keys = list(params)
        try:
            for i in range(0, len(keys), 100):  # MLflow takes at most 100 params per request
                mlflow.log_params({k: params[k] for k in keys[i : i + 100]})
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise

    def log(self, record: dict) -> None:
        metrics = {mlflow_name(tag): value for tag, value in flatten(record).items()}
        self._mlflow.log_metrics(metrics, step=int(record["step"]))

    def close(self) -> None:
        self._mlflow.end_run()


def _flat_config(config: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(_flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class MultiLogger:
    """Fans each record out to several backends.

    A backend whose `log` raises (a W&B network error, a full disk under the event files) is
    warned about once, with its traceback, and dropped for the rest of the run: the training goes
    on, and metrics.jsonl, which the loop writes before calling this, stays the source of truth
    (`replay` can rebuild the TensorBoard files from it). An error in a backend's `close` is warned
    about too. Construction errors are not caught here: `build_loggers` fails at the start of a run
    rather than train for hours without the curves that were asked for.
    """

    def __init__(self, loggers: Iterable[MetricsLogger] = ()):
        self.loggers: list[MetricsLogger] = list(loggers)

    def log(self, record: dict) -> None:
        for logger in list(self.loggers):
            try:
                logger.log(record)
            except Exception:
                log.warning(
                    "metrics logger %s failed at step %s and is dropped for the rest of the run "
                    "(metrics.jsonl still has every record)",
                    type(logger).__name__,
                    record.get("step"),
                    exc_info=True,
                )
                self.loggers.remove(logger)
                self._close_quietly(logger)

    def close(self) -> None:
        for logger in self.loggers:
            self._close_quietly(logger)
        self.loggers = []

    @staticmethod
    def _close_quietly(logger: MetricsLogger) -> None:
        try:
            logger.close()
        except Exception:
            log.warning("metrics logger %s failed to close", type(logger).__name__, exc_info=True)

    def __enter__(self) -> MultiLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_loggers(
    report_to: list[str],
    run_dir: Path,
    *,
    run_name: str,
    config: dict,
    options: dict | None = None,
    purge_step: int | None = None,
) -> MultiLogger:
    """The loggers `metrics.report_to` names, in that order (a repeated name counts once), as one `MultiLogger`.

    `options`: {"wandb": {project, ...more wandb.init arguments}, "mlflow": {tracking_uri,
    experiment}}; wandb's project defaults to "counterpoint", its files go to `<run_dir>/wandb/`.
    TensorBoard writes `<run_dir>/tensorboard/`; `purge_step` is the first step of a resumed
    session (see `TensorBoardLogger`). Raises ValueError for an unknown backend (before starting
    any) and ImportError naming the pip package for one that is not installed.
    """
    names = list(dict.fromkeys(report_to))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown metrics.report_to {unknown}; allowed values: {list(BACKENDS)}")
    options = options or {}
    loggers: list[MetricsLogger] = []
    try:
        for name in names:
            opts = dict(options.get(name) or {})
            if name == "tensorboard":
                loggers.append(TensorBoardLogger(Path(run_dir) / TENSORBOARD_DIR, purge_step=purge_step))
            elif name == "wandb":
                project = opts.pop("project", None) or "counterpoint"
                loggers.append(WandbLogger(project, run_name, config, dir=Path(run_dir), **opts))
            else:
                loggers.append(MLflowLogger(opts.get("tracking_uri"), opts.get("experiment"), run_name, config))
    except BaseException:
        MultiLogger(loggers).close()  # the ones already started
        raise
    return MultiLogger(loggers)


def replay(
    run_dir: Path,
    report_to: Iterable[str] = ("tensorboard",),
    *,
    options: dict | None = None,
    run_name: str | None = None,
) -> int:
    """Re-write the loggers of an existing run folder from its metrics.jsonl; returns the number of
    records replayed. The old `<run_dir>/tensorboard/` is removed first, so replaying twice gives the
    same event files (W&B and MLflow get a new run each time). The run name defaults to the folder's
    name, the config to its config.json."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}")
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    report_to = list(report_to)
    if "tensorboard" in report_to:
        shutil.rmtree(run_dir / TENSORBOARD_DIR, ignore_errors=True)
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    with build_loggers(report_to, run_dir, run_name=run_name or run_dir.name, config=config, options=options) as out:
        for record in records:
            out.log(record)
    return len(records)


def main(argv: list[str] | None = None) -> None:
    """`python -m counterpoint.trainer.loggers RUN_DIR... [--report-to tensorboard ...]`"""
    parser = argparse.ArgumentParser(description="Rebuild a run folder's loggers from its metrics.jsonl.")
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--report-to", nargs="+", default=["tensorboard"], choices=BACKENDS)
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        print(f"{run_dir}: {replay(run_dir, args.report_to)} records replayed")


if __name__ == "__main__":
    main()

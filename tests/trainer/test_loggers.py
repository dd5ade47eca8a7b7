"""Metric loggers beside metrics.jsonl: the tag layout (`flatten`), TensorBoard event files read back,
a failing backend dropped, wandb/MLflow adapters over fake modules, and `replay` of a run folder."""

from __future__ import annotations

import logging
import math
import sys
import types

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from counterpoint.trainer.loggers import (
    MLflowLogger,
    MultiLogger,
    TensorBoardLogger,
    WandbLogger,
    build_loggers,
    flatten,
    mlflow_name,
    replay,
)
from counterpoint.trainer.run_folder import RunFolder

TEXT_TAG = "schedule/changes/text_summary"


def _train(step: int, version: int = 1, stage: str | None = "joint", reward: float = 0.5) -> dict:
    return {
        "kind": "train",
        "update": "rl",
        "step": step,
        "schedule": {
            "version": version,
            "stage": stage,
            "kind": "rl",
            "prompts": {"math": 4, "creative": 2},
            "entropy_targets": {"creative": 1.5},
        },
        "policy_version": step,
        "domains": {
            "math": {
                "reward_mean": reward,
                "accuracy": 0.25,
                "samples": 16,
                "reward_errors": {"wrong_answer": 3, "timeout": 1},
            },
            "creative": {"reward_mean": 0.75, "accuracy": None, "distinct_2": float("nan"), "self_bleu": 0.125},
        },
        "grad_norm": 1.5,
        "seconds": {"generate": 2.0, "update": 1.0, "step": 3.5},
        "samples_per_second": 9.25,
    }


def _eval(step: int) -> dict:
    return {
        "kind": "eval",
        "step": step,
        "policy_version": step,
        "domains": {"math": {"accuracy": 0.5, "pass@1": 0.5, "pass@4": 0.75, "reward_errors": {"wrong_answer": 8}}},
        "seconds": {"generate": 4.0, "score": 0.5},
    }


def test_flatten_lays_train_figures_out_by_domain_and_skips_none_and_nan():
    assert flatten(_train(3)) == {
        "math/reward_mean": 0.5,
        "math/accuracy": 0.25,
        "math/samples": 16.0,
        "math/reward_errors/wrong_answer": 3.0,
        "math/reward_errors/timeout": 1.0,
        "creative/reward_mean": 0.75,
        "creative/self_bleu": 0.125,
        "seconds/generate": 2.0,
        "seconds/update": 1.0,
        "seconds/step": 3.5,
        "schedule/version": 1.0,
        "schedule/prompts/math": 4.0,
        "schedule/prompts/creative": 2.0,
        "schedule/entropy_targets/creative": 1.5,
        "run/policy_version": 3.0,
        "run/grad_norm": 1.5,
        "run/samples_per_second": 9.25,
    }


def test_flatten_puts_eval_figures_under_domain_eval_and_seconds_eval():
    assert flatten(_eval(5)) == {
        "math/eval/accuracy": 0.5,
        "math/eval/pass@1": 0.5,
        "math/eval/pass@4": 0.75,
        "math/eval/reward_errors/wrong_answer": 8.0,
        "seconds/eval/generate": 4.0,
        "seconds/eval/score": 0.5,
        "run/eval/policy_version": 5.0,
    }


def test_flatten_skips_non_numeric_and_non_finite_values_and_leaves_the_record_alone():
    record = {
        "kind": "train",
        "step": 1,
        "domains": {"d": {"a": float("inf"), "b": "text", "c": [1, 2], "e": True, "f": {"g": None, "h": -math.inf}}},
        "grad_norm": None,
        "optimizer_steps": 2,
        "schedule": None,
    }
    before = repr(record)
    assert flatten(record) == {"d/e": 1.0, "run/optimizer_steps": 2.0}
    assert repr(record) == before


def _read(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _scalars(acc: EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_logger_writes_each_record_at_its_step_and_the_schedule_changes(tmp_path):
    records = [
        _eval(0),
        _train(1, reward=0.25),
        _train(2, reward=0.5),
        _train(3, version=2, stage="math_only"),
        _eval(3),
    ]
    logger = TensorBoardLogger(tmp_path / "tensorboard")
    logger.log(records[0])
    logger.log(records[1])
    # flushed after each record: a live reader sees the step before the writer is closed
    assert [e.step for e in _read(tmp_path / "tensorboard").Scalars("math/reward_mean")] == [1]
    for record in records[2:]:
        logger.log(record)
    logger.close()

    acc = _read(tmp_path / "tensorboard")
    scalars = _scalars(acc)
    assert set(scalars) == {tag for r in records for tag in flatten(r)}
    assert [s for s, _ in scalars["math/reward_mean"]] == [1, 2, 3]
    assert [v for _, v in scalars["math/reward_mean"]] == pytest.approx([0.25, 0.5, 0.5], rel=1e-6)
    assert scalars["math/eval/pass@4"] == [(0, 0.75), (3, 0.75)]
    assert scalars["schedule/version"] == [(1, 1.0), (2, 1.0), (3, 2.0)]
    assert scalars["run/grad_norm"] == [(1, 1.5), (2, 1.5), (3, 1.5)]
    assert scalars["seconds/eval/score"] == [(0, 0.5), (3, 0.5)]

    texts = [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors(TEXT_TAG)]
    assert [step for step, _ in texts] == [1, 3]  # the first plan and the change, not step 2
    assert texts[1][1].startswith("step 3: schedule version 2, stage math_only (rl)")
    assert "prompts math 4, creative 2" in texts[1][1]


class FakeFailingLogger:
    def __init__(self):
        self.closed = False

    def log(self, record: dict) -> None:
        raise ConnectionError("wandb.ai unreachable")

    def close(self) -> None:
        self.closed = True


class RecordingLogger:
    def __init__(self):
        self.steps: list[int] = []
        self.closed = False

    def log(self, record: dict) -> None:
        self.steps.append(record["step"])

    def close(self) -> None:
        self.closed = True


def test_multi_logger_drops_a_failing_backend_with_a_warning_and_keeps_the_others(caplog):
    failing, kept = FakeFailingLogger(), RecordingLogger()
    multi = MultiLogger([failing, kept])
    with caplog.at_level(logging.WARNING, logger="counterpoint.trainer.loggers"):
        multi.log(_train(1))
        multi.log(_train(2))
    assert kept.steps == [1, 2]
    assert multi.loggers == [kept]
    assert failing.closed
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "FakeFailingLogger" in warnings[0].getMessage()
    multi.close()
    assert kept.closed and multi.loggers == []


def test_build_loggers_rejects_unknown_backends_naming_the_allowed_ones(tmp_path):
    with pytest.raises(ValueError, match="tensorboard.*wandb.*mlflow"):
        build_loggers(["tensorboard", "comet"], tmp_path, run_name="r", config={})
    assert not (tmp_path / "tensorboard").exists()  # nothing started


@pytest.mark.parametrize("backend", ["wandb", "mlflow"])
def test_selecting_a_backend_that_is_not_installed_names_its_pip_package(tmp_path, monkeypatch, backend):
    monkeypatch.setitem(sys.modules, backend, None)  # `import <backend>` raises ImportError
    with pytest.raises(ImportError, match=f"pip install {backend}"):
        build_loggers([backend], tmp_path, run_name="r", config={})


def _fake_wandb() -> types.ModuleType:
    fake_wandb = types.ModuleType("wandb")
    fake_wandb.inits, fake_wandb.logged, fake_wandb.finished = [], [], []

    class Run:
        def log(self, data, step=None):
            fake_wandb.logged.append((dict(data), step))

        def finish(self):
            fake_wandb.finished.append(True)

    def init(**kwargs):
        fake_wandb.inits.append(kwargs)
        return Run()

    fake_wandb.init = init
    return fake_wandb


def test_wandb_logger_forwards_the_flattened_tags_at_the_record_step(tmp_path, monkeypatch):
    fake_wandb = _fake_wandb()
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb)
    options = {"wandb": {"project": "cp-test", "entity": "team"}}
    multi = build_loggers(["wandb"], tmp_path, run_name="run-1", config={"lr": 1e-6}, options=options)
    assert isinstance(multi.loggers[0], WandbLogger)
    multi.log(_train(7))
    multi.log(_eval(7))
    multi.close()
    assert fake_wandb.inits == [
        {"project": "cp-test", "name": "run-1", "config": {"lr": 1e-6}, "dir": str(tmp_path), "entity": "team"}
    ]
    assert fake_wandb.logged == [(flatten(_train(7)), 7), (flatten(_eval(7)), 7)]
    assert fake_wandb.finished == [True]


def _fake_mlflow() -> types.ModuleType:
    fake_mlflow = types.ModuleType("mlflow")
    fake_mlflow.calls = []
    for name in ("set_tracking_uri", "set_experiment", "start_run", "log_params", "log_metrics", "end_run"):
        setattr(fake_mlflow, name, lambda *a, _n=name, **k: fake_mlflow.calls.append((_n, a, k)))
    return fake_mlflow


def test_mlflow_logger_forwards_sanitised_tags_at_the_record_step(tmp_path, monkeypatch):
    fake_mlflow = _fake_mlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake_mlflow)
    options = {"mlflow": {"tracking_uri": "file:///tmp/mlruns", "experiment": "cp"}}
    config = {"learner": {"lr": 1e-6, "loss": "grpo"}, "domains": {}}
    multi = build_loggers(["mlflow"], tmp_path, run_name="run-1", config=config, options=options)
    assert isinstance(multi.loggers[0], MLflowLogger)
    multi.log(_eval(4))
    multi.close()
    names = [c[0] for c in fake_mlflow.calls]
    assert names == ["set_tracking_uri", "set_experiment", "start_run", "log_params", "log_metrics", "end_run"]
    assert fake_mlflow.calls[0][1] == ("file:///tmp/mlruns",) and fake_mlflow.calls[1][1] == ("cp",)
    assert fake_mlflow.calls[2][2] == {"run_name": "run-1"}
    assert fake_mlflow.calls[3][1] == ({"learner.lr": "1e-06", "learner.loss": "grpo", "domains": "{}"},)
    (metrics,), kwargs = fake_mlflow.calls[4][1], fake_mlflow.calls[4][2]
    assert kwargs == {"step": 4}
    assert metrics == {mlflow_name(t): v for t, v in flatten(_eval(4)).items()}
    assert metrics["math/eval/pass_at_4"] == 0.75 and "math/eval/accuracy" in metrics


def test_mlflow_names_keep_allowed_characters_and_replace_the_rest():
    assert mlflow_name("math/eval/pass@1") == "math/eval/pass_at_1"
    assert mlflow_name("code/reward_errors/syntax error:x-1.0") == "code/reward_errors/syntax error:x-1.0"
    assert mlflow_name("a//b/../c#d") == "a/b/c_d"


def test_replay_rebuilds_the_same_scalars_and_is_idempotent(tmp_path):
    run = RunFolder(tmp_path / "run")
    records = [_eval(0), _train(1, reward=0.25), _train(2, version=2, stage=None), _eval(2)]
    for record in records:
        run.log_metrics(record)
    (run.path / "tensorboard").mkdir()
    (run.path / "tensorboard" / "stale.txt").write_text("from an older writer")

    assert replay(run.path) == len(records)
    first = _scalars(_read(run.path / "tensorboard"))
    assert replay(run.path) == len(records)
    files = sorted(p.name for p in (run.path / "tensorboard").iterdir())
    assert len(files) == 1 and files[0].startswith("events.out.tfevents")

    acc = _read(run.path / "tensorboard")
    assert _scalars(acc) == first
    expected: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        for tag, value in flatten(record).items():
            expected.setdefault(tag, []).append((record["step"], value))
    assert set(first) == set(expected)
    for tag, points in expected.items():
        assert [s for s, _ in first[tag]] == [s for s, _ in points], tag
        assert [v for _, v in first[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag
    assert [e.step for e in acc.Tensors(TEXT_TAG)] == [1, 2]


def test_replay_needs_a_metrics_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        replay(tmp_path)


def test_a_resumed_session_with_purge_step_hides_the_points_the_previous_one_wrote_past_it(tmp_path):
    first = TensorBoardLogger(tmp_path / "tb")
    for step in (1, 2, 3):
        first.log(_train(step, reward=0.25))
    first.close()
    resumed = TensorBoardLogger(tmp_path / "tb", purge_step=3)  # resumed from the checkpoint of step 2
    for step in (3, 4):
        resumed.log(_train(step, reward=0.5))
    resumed.close()
    assert _scalars(_read(tmp_path / "tb"))["math/reward_mean"] == [(1, 0.25), (2, 0.25), (3, 0.5), (4, 0.5)]

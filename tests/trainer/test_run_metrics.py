"""What a run records about its range, through the loop with the in-process fakes (fakes.py) and
the real reward functions and diversity measures: diversity per domain on every step and
evaluation, pass@k at evaluation, the effective rank every N steps, the entropy law refitted at
each evaluation, and the transfer matrix of a staged run."""

import pytest

from counterpoint.rollout.diversity import DIVERSITY_METRICS
from counterpoint.trainer.analysis import transfer_from_run
from counterpoint.trainer.loop import progress_line, train
from counterpoint.trainer.run_folder import RunFolder

from .fakes import fake_config, fake_parts

LEXICAL = ("distinct_1", "distinct_2", "distinct_3", "distinct_4", "ead_2", "self_bleu", "unique_trajectories")


def test_every_step_and_eval_has_diversity_and_the_rank_comes_every_n_steps(tmp_path):
    cfg = fake_config(4, eval_every=2, metrics={"effective_rank_every_steps": 2})
    run = RunFolder(tmp_path / "run")
    train(cfg, run=run, parts=fake_parts(cfg, run))
    records = run.read_metrics()
    trained = [r for r in records if r["kind"] == "train"]
    for r in trained:
        for d, m in r["domains"].items():
            assert set(LEXICAL) <= set(m), (r["step"], d)
            assert m["distinct_2"] is None or 0.0 <= m["distinct_2"] <= 1.0
            assert 1 <= m["unique_trajectories"] <= 4  # groups of 4 samples
            assert set(m) - set(DIVERSITY_METRICS) >= {"reward_mean", "entropy_mean"}
        assert {"diversity", "effective_rank"} <= set(r["seconds"])
        # the fake learner reports a rank of 2 on the steps it is asked for one
        ranks = {d: m.get("effective_rank") for d, m in r["domains"].items()}
        assert ranks == ({"math": 2.0, "creative": 2.0} if r["step"] % 2 == 0 else {"math": None, "creative": None})
    assert "D2 " in progress_line(trained[-1], 4)
    for e in (r for r in records if r["kind"] == "eval"):
        assert set(LEXICAL) <= set(e["domains"]["creative"])  # eval groups of 4 (see fake_config)
        assert e["domains"]["math"]["pass@1"] == pytest.approx(e["domains"]["math"]["accuracy"])
        assert "pass@1" not in e["domains"]["creative"]  # no correctness, no pass@k
        assert "entropy_law" in e


def test_a_sequential_run_records_its_stage_boundaries_and_transfer(tmp_path):
    cfg = fake_config(
        4, eval_every=0, schedule={"type": "sequential", "order": ["math", "creative"], "steps_per_stage": 2}
    )
    run = RunFolder(tmp_path / "run")
    train(cfg, run=run, parts=fake_parts(cfg, run))
    boundaries = [e for e in run.read_events() if e["event"] == "stage_boundary"]
    assert [(e["step"], e["stage_domains"]) for e in boundaries] == [(2, ["math"]), (4, ["creative"])]
    evals = sorted({r["step"] for r in run.read_metrics() if r["kind"] == "eval"})
    assert evals == [0, 2, 4]  # the boundary after step 2 evaluated although eval_every_steps is 0
    transfer = transfer_from_run(run.read_metrics(), run.read_events())
    assert transfer["stages"][0] == "initial" and len(transfer["R"]) == 3
    assert transfer["domains"][:2] == ["math", "creative"]
    assert transfer["bwt"]["math"] is not None and transfer["fwt"]["creative"] is not None
    assert transfer["bwt"]["creative"] is None and transfer["fwt"]["math"] is None


def test_a_joint_run_has_no_transfer_matrix(tmp_path):
    cfg = fake_config(2)
    run = RunFolder(tmp_path / "run")
    train(cfg, run=run, parts=fake_parts(cfg, run))
    assert not [e for e in run.read_events() if e["event"] == "stage_boundary"]
    assert transfer_from_run(run.read_metrics(), run.read_events()) is None


def test_semantic_measures_come_every_n_steps_and_at_every_evaluation():
    from counterpoint.trainer.metrics_config import DiversityConfig

    cfg = DiversityConfig(semantic_groups=2, semantic_every_steps=5, semantic_eval_groups=16)
    assert [cfg.options(evaluation=False, step=s)["semantic_groups"] for s in (1, 4, 5, 6, 10)] == [0, 0, 2, 0, 2]
    assert cfg.options(evaluation=True)["semantic_groups"] == 16
    assert DiversityConfig(semantic_groups=0, semantic_eval_groups=0).semantic is False
    assert DiversityConfig(enabled=False).options(evaluation=True)["enabled"] is False

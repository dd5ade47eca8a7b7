"""The study runner and its report, with a fake launcher standing in for `counterpoint run`
(the real path: tests/cluster/test_study.py)."""

from __future__ import annotations

import json

import pytest

from counterpoint.study.report import write_study_report
from counterpoint.study.runner import RunKey, StudyFolder, run_study
from counterpoint.study.spec import StudyError, parse_study

from .fake_runs import FakeLauncher, write_run


def spec(**over):
    data = {
        "name": "t",
        "config": "smoke",
        "steps": 6,
        "seeds": [0, 1, 2],
        "conditions": {
            "none": {"description": "no control"},
            "kl": {"set": {"learner.per_domain.creative.loss": {"type": "kl_cov"}}},
            "bonus": {"set": {"learner.per_domain.creative.entropy": {"coef": 0.01}}},
            "best_first": {
                "best_of": {
                    "conditions": ["kl", "bonus"],
                    "score": "creative.distinct_2",
                    "keep_within": {"metric": "math.accuracy", "of": "none", "points": 0.05},
                },
                "set": {"learner.learning_rate": 0.0001},
            },
        },
        "hold_equal": ["learner.mini_batches"],
        "claims": [
            {
                "claim": "a control keeps range",
                "test": {
                    "test": "any",
                    "tests": [
                        {"test": "at_least", "condition": "kl", "metric": "creative.distinct_2", "value": 0.5},
                        {"test": "at_least", "condition": "bonus", "metric": "creative.distinct_2", "value": 0.5},
                    ],
                },
            },
            {
                "claim": "first beats its pick",
                "test": {
                    "test": "difference",
                    "condition": "best_first",
                    "than": "best_first.picked",
                    "metric": "math.accuracy",
                    "expect": "greater",
                },
            },
            {
                "claim": "math falls",
                "test": {"test": "change", "condition": "none", "metric": "math.accuracy", "expect": "down"},
            },
        ],
    }
    data.update(over)
    return parse_study(data)


def fake():
    """kl keeps the most range but costs math; bonus keeps some and keeps math."""

    def distinct(cfg):
        loss = cfg.get("learner", {}).get("per_domain", {}).get("creative", {})
        return 0.9 if "loss" in loss else 0.6 if "entropy" in loss else 0.1

    def math(cfg):
        loss = cfg.get("learner", {}).get("per_domain", {}).get("creative", {})
        return 0.2 if "loss" in loss else 0.45

    return FakeLauncher(distinct=distinct, math=math)


def test_every_run_once_then_resume_runs_nothing(tmp_path):
    launcher = fake()
    outcome = run_study(spec(), tmp_path, launcher=launcher, python="py", on_progress=lambda m: None)
    assert outcome == {f"{c}/seed{s}": "done" for c in ("none", "kl", "bonus", "best_first") for s in (0, 1, 2)}
    assert len(launcher.calls) == 12
    first = launcher.calls[0]
    assert first[:4] == ["py", "-m", "counterpoint", "run"] and "--run-dir" in first
    again = fake()
    run_study(spec(), tmp_path, launcher=again, on_progress=lambda m: None)
    assert again.calls == []


def test_best_of_picks_the_best_that_keeps_math_and_records_why(tmp_path):
    run_study(spec(), tmp_path, launcher=fake(), on_progress=lambda m: None)
    best = json.loads((tmp_path / "best.json").read_text())["best_first"]
    assert best["picked"] == "bonus"  # kl has more range but loses 0.25 of math
    assert best["candidates"]["kl"]["within"] is False and best["candidates"]["bonus"]["within"] is True
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((tmp_path / "runs/best_first/seed0.yaml").read_text())))
    assert cfg["learner"]["per_domain"]["creative"]["entropy"] == {"coef": 0.01}
    assert cfg["learner"]["learning_rate"] == 0.0001


def test_a_failed_run_does_not_stop_the_others_and_is_retried(tmp_path):
    launcher = FakeLauncher(fail={"kl/seed1"})
    s = spec(
        conditions={"none": {}, "kl": {"set": {"learner.per_domain.creative.loss": {"type": "kl_cov"}}}}, claims=[]
    )
    outcome = run_study(s, tmp_path, launcher=launcher, on_progress=lambda m: None)
    assert outcome["kl/seed1"] == "failed" and outcome["kl/seed2"] == "done"
    status = StudyFolder(tmp_path).status()
    assert status["kl/seed1"]["state"] == "failed" and status["kl/seed1"]["exit_status"] == 1
    retry = FakeLauncher()
    assert run_study(s, tmp_path, launcher=retry, on_progress=lambda m: None)["kl/seed1"] == "done"
    assert len(retry.calls) == 1
    # it stopped before a checkpoint: the folder was moved aside, not deleted
    assert (tmp_path / "runs/kl/seed1.failed-1/metrics.jsonl").exists()
    assert StudyFolder(tmp_path).status()["kl/seed1"]["attempts"] == 2


def test_a_run_stopped_after_a_checkpoint_is_resumed(tmp_path):
    s = spec(conditions={"none": {}}, claims=[], seeds=[0])
    folder = StudyFolder(tmp_path)
    folder.claim(s)
    run_dir = folder.run_dir(RunKey("none", 0))
    write_run(run_dir, finished=False)
    (run_dir / "checkpoint").mkdir()
    (run_dir / "checkpoint/driver_state.json").write_text("{}")
    (run_dir.parent / "seed0.yaml").write_text("run: {seed: 0, steps: 6}\n")
    launcher = FakeLauncher()
    run_study(s, tmp_path, launcher=launcher, on_progress=lambda m: None)
    assert launcher.calls[0][4:6] == ["--resume", str(run_dir)]


def test_a_folder_refuses_another_study(tmp_path):
    run_study(
        spec(conditions={"none": {}}, claims=[], seeds=[0]),
        tmp_path,
        launcher=FakeLauncher(),
        on_progress=lambda m: None,
    )
    with pytest.raises(StudyError, match="holds another version of study 't'"):
        run_study(spec(conditions={"none": {}}, claims=[], seeds=[0, 1]), tmp_path, launcher=FakeLauncher())
    # new words and claims judge the same runs: accepted, stored, nothing run again
    claim = {
        "claim": "math rose",
        "test": {"test": "change", "condition": "none", "metric": "math.accuracy", "expect": "up"},
    }
    revised = spec(conditions={"none": {"description": "now described"}}, claims=[claim], seeds=[0])
    again = FakeLauncher()
    run_study(revised, tmp_path, launcher=again, on_progress=lambda m: None)
    assert again.calls == [] and StudyFolder(tmp_path).spec().claims[0].claim == "math rose"


def test_parallel_runs_every_run_once(tmp_path):
    launcher = fake()
    outcome = run_study(spec(), tmp_path, parallel=3, launcher=launcher, on_progress=lambda m: None)
    assert set(outcome.values()) == {"done"} and len(launcher.calls) == 12
    assert len(StudyFolder(tmp_path).status()) == 12


def test_the_report(tmp_path):
    run_study(spec(), tmp_path, launcher=fake(), on_progress=lambda m: None)
    page = write_study_report(tmp_path)
    out = page.parent
    md = (out / "summary.md").read_text()
    data = json.loads((out / "summary.json").read_text())
    assert {p.name for p in out.glob("*.png")} == {
        "entropy_mean.png",
        "reward_mean.png",
        "distinct_2.png",
        "eval.png",
        "eval_distinct_2.png",
    }
    # kl's distinct-2 is 0.9 + 0.01 * seed: mean 0.91 over seeds 0-2, interval from their spread
    kl = data["conditions"]["kl"]["creative.distinct_2"]["end"]
    assert kl["mean"] == pytest.approx(0.91) and kl["n"] == 3 and kl["half"] == pytest.approx(4.303 * 0.01 / 3**0.5)
    verdicts = {v["claim"]: v["outcome"] for v in data["verdicts"]}
    # best_first took bonus's overrides (and a lower learning rate, which the fake ignores): the
    # same math on every seed as bonus, so their paired difference is 0 with no spread
    assert verdicts == {
        "a control keeps range": "held",
        "first beats its pick": "inconclusive",
        "math falls": "did not hold",
    }
    assert "math.accuracy: best_first − best_first.picked" in md
    assert "| a control keeps range | **held** |" in md and "**best_first** took the overrides of **bonus**" in md
    assert '`learner.per_domain.creative.loss.type` = "kl_cov"' in md
    # the forgetting-and-law table: only the columns some run measured; law error 0.02 + 0.01 * seed
    assert "| condition | bwt | math.bwt | math.law_error |" in md and "| none | -0.050 ± 0.000 |" in md
    assert "0.030 ± 0.025" in md
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 5 and '<span class="held">held</span>' in html


def test_a_report_of_a_partial_study_says_what_is_missing(tmp_path):
    s = spec(
        conditions={"none": {}, "kl": {"set": {"learner.per_domain.creative.loss": {"type": "kl_cov"}}}}, claims=[]
    )
    run_study(s, tmp_path, launcher=FakeLauncher(fail={"kl/seed0", "kl/seed1", "kl/seed2"}), on_progress=lambda m: None)
    md = (write_study_report(tmp_path).parent / "summary.md").read_text()
    assert "**Not finished:** kl/seed0, kl/seed1, kl/seed2." in md and "| kl | 0/3 |" in md
    with pytest.raises(StudyError, match="not a study folder"):
        write_study_report(tmp_path / "runs")


def test_best_of_waits_for_every_candidate(tmp_path):
    s = spec(claims=[])
    outcome = run_study(s, tmp_path, launcher=FakeLauncher(fail={"kl/seed2"}), on_progress=lambda m: None)
    assert outcome["kl/seed2"] == "failed"
    assert {outcome[f"best_first/seed{i}"] for i in range(3)} == {"blocked"}
    assert not (tmp_path / "best.json").exists() and not (tmp_path / "runs/best_first").exists()
    outcome = run_study(s, tmp_path, launcher=fake(), on_progress=lambda m: None)
    assert set(outcome.values()) == {"done"}
    assert json.loads((tmp_path / "best.json").read_text())["best_first"]["picked"] == "bonus"

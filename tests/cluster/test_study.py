"""`counterpoint study run quick` in a short form (two of its runs, 3 steps each), for real: each
run a `counterpoint run` child on its own embedded Ray cluster with vLLM, reward actors and
DeepSpeed; then the report; then a second `study run` that finds everything done and trains
nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

SHORT = [
    "--steps",
    "3",
    "--only",
    "joint_preference",
    "structured_only",  # two of its three runs: CI's time is short
    "--set",
    "run.eval_every_steps=3",
    "--set",
    "model.tiny.warm_start_max_steps=150",  # the smoke config's tiny model (model_cache has it)
    "--set",
    "model.tiny.warm_start_target_accuracy=1.0",
    "--set",
    "generation.prompts_per_step=6",
    "--set",
    "generation.samples_per_prompt=4",
    "--set",
    "generation.max_response_tokens=8",
    "--set",
    "domains.math.eval.prompts=4",
    "--set",
    "domains.code.eval.prompts=4",
    "--set",
    "domains.creative.eval.prompts=4",
    "--set",
    "metrics.diversity.semantic_groups=0",
    "--set",
    "metrics.diversity.semantic_eval_groups=0",
]


def test_quick_study_short_form_runs_reports_and_resumes(tmp_path, model_cache):
    out = tmp_path / "study"
    cmd = [
        sys.executable,
        "-m",
        "counterpoint",
        "study",
        "run",
        "quick",
        "--out",
        str(out),
        "--set",
        f"model.cache_dir={model_cache}",
        *SHORT,
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    assert not (out / "runs" / "joint_novelty").exists()
    for cond in ("joint_preference", "structured_only"):
        run = out / "runs" / cond / "seed0"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["policy_version"] == 3, cond
        config = json.loads((run / "config.json").read_text())
        assert config["run"]["steps"] == 3 and config["generation"]["prompts_per_step"] == 6
        assert config["learner"]["mini_batches"] == 2  # the study's own override
    pref = json.loads((out / "runs/joint_preference/seed0/config.json").read_text())
    assert pref["domains"]["creative"]["reward"]["type"] == "preference"
    structured = [
        json.loads(line) for line in (out / "runs/structured_only/seed0/metrics.jsonl").read_text().splitlines()
    ]
    assert all(r["schedule"]["prompts"].get("creative", 0) == 0 for r in structured if r["kind"] == "train")
    report = out / "report"
    data = json.loads((report / "summary.json").read_text())
    # the claim that needs joint_novelty went with it; one seed gives no interval: inconclusive by design
    assert [(v["claim"], v["outcome"]) for v in data["verdicts"]] == [
        ("structured tasks lower entropy", "inconclusive")
    ]
    assert data["conditions"]["joint_preference"]["math.accuracy"]["end"]["n"] == 1
    assert (report / "report.html").stat().st_size > 10_000 and (report / "eval.png").exists()
    assert "| structured tasks lower entropy | inconclusive |" in (report / "summary.md").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "starting" not in again.stdout and "report:" in again.stdout

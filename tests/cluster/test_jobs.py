"""Submit a real run to a `ray start` cluster on loopback through the Jobs API and follow it."""

import json
import subprocess
import sys

import pytest
import yaml

from .helpers import SMOKE, small_overrides

pytestmark = pytest.mark.integration


def test_submit_follow_status_list(tmp_path, model_cache, ray_cluster):
    from counterpoint.config import load_config, resolved_json

    cfg = load_config(SMOKE, overrides=small_overrides(tmp_path, model_cache, "run.name=jobtest"))
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(json.loads(resolved_json(cfg))))
    cli = [sys.executable, "-m", "counterpoint"]
    proc = subprocess.run(
        [*cli, "submit", str(config_file), "--address", ray_cluster, "--no-auth", "--name", "jobtest-1", "--follow"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "submitted jobtest-1" in proc.stdout and "job jobtest-1: SUCCEEDED" in proc.stdout
    assert "components:" in proc.stdout  # the followed logs are the run's own console

    status = subprocess.run(
        [*cli, "job", "status", "jobtest-1", "--address", ray_cluster, "--no-auth"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(status.stdout)["status"] == "SUCCEEDED"
    listed = subprocess.run(
        [*cli, "job", "list", "--address", ray_cluster, "--no-auth"], capture_output=True, text=True, timeout=60
    )
    assert "jobtest-1" in listed.stdout

    runs = list((tmp_path / "runs").glob("jobtest-*"))
    assert len(runs) == 1
    steps = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["kind"] == "train"] == [1, 2]
    components = [json.loads(line) for line in (runs[0] / "events.jsonl").read_text().splitlines()][1]["components"]
    assert components[0].startswith("ray ") and "joined auto" in components[0]

    unknown = subprocess.run(
        [*cli, "job", "status", "no-such-job", "--address", ray_cluster, "--no-auth"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode != 0 and "no-such-job" in unknown.stderr

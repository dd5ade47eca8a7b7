"""The schedule controller: persistence, restart, versions, the applied version per step, and
what a failed or concurrent change leaves behind. No Ray: the controller is a plain class."""

import json
import threading

import pytest

from counterpoint.trainer.curriculum.controller import (
    METRICS_FILE,
    STATE_FILE,
    ControllerStateError,
    ScheduleController,
)
from counterpoint.trainer.curriculum.stages import ScheduleConflict, ScheduleError, StaleVersion

DOMAINS = ["math", "code", "creative"]
STAGES = [
    {
        "name": "structured",
        "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0}},
        "advance": {"type": "steps", "steps": 3},
    },
    {"name": "creative", "domains": {"creative": {"weight": 1.0}}},
]


@pytest.fixture
def run_dir(tmp_path):
    return tmp_path / "run-1"


@pytest.fixture
def ctl(run_dir):
    return ScheduleController(run_dir, STAGES, domains=DOMAINS)


def test_persists_on_creation_and_restores(ctl, run_dir):
    ctl.pause(author="alice", reason="lunch")
    ctl.set_domain("structured", "math", weight=0.5, author="bob", reason="less math")
    again = ScheduleController(run_dir)  # no initial schedule: restored from controller.json
    assert again.get_schedule() == ctl.get_schedule()
    assert again.audit() == ctl.audit()
    assert [(e["version"], e["author"], e["reason"]) for e in again.audit()] == [
        (1, "system", "initial schedule"),
        (2, "alice", "lunch"),
        (3, "bob", "less math"),
    ]
    assert again.status()["run_paused"] is True and again.status()["latest_version"] == 3


def test_initial_stages_are_ignored_when_state_exists(ctl, run_dir):
    ctl.pause(author="op")
    other = ScheduleController(run_dir, [{"name": "x", "domains": {"math": {}}}])
    assert [s["name"] for s in other.get_schedule()["stages"]] == ["structured", "creative"]


def test_missing_state_without_schedule(tmp_path):
    with pytest.raises(FileNotFoundError, match="give an initial schedule"):
        ScheduleController(tmp_path / "nothing")


def test_state_file_is_complete_json_and_no_temp_files_remain(ctl, run_dir):
    for i in range(5):
        ctl.set_domain("structured", "code", weight=2.0 + i, author="op")
    data = json.loads((run_dir / STATE_FILE).read_text())
    assert data["schedule"]["version"] == 6
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_stale_version_raises_and_changes_nothing(ctl, run_dir):
    ctl.pause(author="a", base_version=1)
    before = (run_dir / STATE_FILE).read_bytes()
    with pytest.raises(StaleVersion) as err:
        ctl.resume(author="b", base_version=1)
    assert err.value.current_version == 2
    with pytest.raises(StaleVersion):
        ctl.replace_schedule(1, STAGES, author="b")
    assert (run_dir / STATE_FILE).read_bytes() == before
    assert ctl.get_schedule()["version"] == 2


def test_every_mutation_bumps_the_version_with_author_and_reason(ctl):
    views = [
        ctl.pause(author="a", reason="1"),
        ctl.resume(author="b", reason="2"),
        ctl.pause("creative", author="c", reason="3"),
        ctl.set_domain("structured", "code", entropy_target=0.3, author="d", reason="4"),
        ctl.replace_schedule(5, list(reversed(STAGES)), author="e", reason="5"),
        ctl.advance(author="f", reason="6"),
        ctl.finish(author="g", reason="7"),
    ]
    assert [v["version"] for v in views] == [2, 3, 4, 5, 6, 7, 8]
    assert [(e["author"], e["reason"]) for e in ctl.audit(since=1)] == [(x, str(i)) for i, x in enumerate("abcdefg", 1)]
    assert all(e["time"].endswith("+00:00") for e in ctl.audit())


def test_next_plan_records_the_applied_version_per_step(ctl):
    assert ctl.next_plan(1, 60).schedule_version == 1
    ctl.report(1, {"math": {"reward_mean": 0.1}})
    ctl.set_domain("structured", "math", weight=1.0, author="op")  # version 2, applies from step 2
    assert ctl.status()["applied_version"] == 1 and ctl.status()["latest_version"] == 2
    plan = ctl.next_plan(2, 60)
    assert plan.schedule_version == 2 and plan.prompts_per_domain == {"math": 30, "code": 30}
    ctl.report(2, {"math": {"reward_mean": 0.2}})
    assert [ctl.applied_version(s) for s in (1, 2, 3)] == [1, 2, None]
    assert [(m["step"], m["schedule_version"], m["stage"]) for m in ctl.metrics()] == [
        (1, 1, "structured"),
        (2, 2, "structured"),
    ]
    assert ctl.status()["applied_version"] == 2 and ctl.status()["applied_at_step"] == 2


def test_paused_plans_are_not_recorded_as_applied(ctl):
    ctl.pause(author="op")
    plan = ctl.next_plan(1, 60)
    assert plan.status == "paused"
    assert ctl.applied_version(1) is None and ctl.status()["status"] == "paused"


def test_reports_drive_the_advance_rule_and_survive_a_restart(ctl, run_dir):
    for step in (1, 2):
        ctl.next_plan(step, 60)
        ctl.report(step, {"math": {"reward_mean": 0.5}})
    restarted = ScheduleController(run_dir)
    assert restarted.get_schedule()["progress"][0]["steps"] == 2
    restarted.next_plan(3, 60)
    restarted.report(3, {"math": {"reward_mean": 0.5}})
    assert restarted.status()["stage"] == "creative" and restarted.status()["latest_version"] == 2
    assert restarted.audit()[-1]["author"] == "schedule" and restarted.next_plan(4, 60).stage == "creative"
    assert [m["step"] for m in ScheduleController(run_dir).metrics()] == [1, 2, 3]


def test_metrics_since_and_non_finite_values(ctl):
    for step in range(1, 6):
        ctl.report(
            step, {"math": {"reward_mean": float(step), "entropy_mean": float("nan"), "note": "text", "accuracy": None}}
        )
    records = ctl.metrics(since_step=3)
    assert [r["step"] for r in records] == [4, 5]
    assert records[0]["domains"]["math"] == {"reward_mean": 4.0, "entropy_mean": None, "accuracy": None}
    assert [r["step"] for r in ctl.metrics(0, limit=2)] == [1, 2]


def test_bad_reports_are_refused(ctl):
    with pytest.raises(ScheduleError, match="step"):
        ctl.report(-1, {})
    with pytest.raises(ScheduleError, match="metrics"):
        ctl.report(1, {"math": 0.5})


def test_torn_metrics_line_is_skipped(ctl, run_dir):
    ctl.report(1, {"math": {"reward_mean": 1.0}})
    with open(run_dir / METRICS_FILE, "a") as f:
        f.write('{"step": 2, "dom')  # a crash mid-write
    assert [r["step"] for r in ScheduleController(run_dir).metrics()] == [1]


def test_finished_run_refuses_changes(ctl):
    ctl.finish()
    with pytest.raises(ScheduleConflict, match="finished"):
        ctl.pause(author="op")
    assert ctl.next_plan(1, 60).status == "done" and ctl.status()["status"] == "finished"


def test_a_reopened_run_plans_and_takes_changes_again(ctl, run_dir):
    v = ctl.get_schedule()["version"]
    assert ctl.reopen()["version"] == v  # not finished: nothing to undo, no new version
    ctl.finish()
    view = ctl.reopen("resume", "resumed at step 2 to train to step 4")
    assert view["finished"] is False and view["version"] == v + 2
    assert ctl.next_plan(1, 60).status == "train" and ctl.status()["status"] == "running"
    ctl.pause(author="op")  # accepted again
    again = ScheduleController(run_dir)  # persisted
    assert [e["action"] for e in again.audit()][-3:] == ["finish", "reopen", "pause"]
    assert again.audit()[-2]["author"] == "resume" and "step 4" in again.audit()[-2]["reason"]


def test_two_controllers_on_one_folder_see_each_other(ctl, run_dir):
    """A local `counterpoint serve` and the training run each hold a controller on the folder."""
    server = ScheduleController(run_dir)
    server.set_domain("structured", "math", weight=1.0, author="op")
    assert ctl.next_plan(1, 60).schedule_version == 2  # the driver's controller reloaded the change
    ctl.report(1, {"math": {"reward_mean": 0.3}})
    assert server.metrics()[0]["schedule_version"] == 2
    with pytest.raises(StaleVersion):
        server.pause(author="op", base_version=1)


def test_concurrent_writers_on_the_same_base_version(ctl):
    results = []

    def write(i):
        try:
            ctl.set_domain("structured", "code", weight=float(i + 2), author=f"w{i}", base_version=1)
            results.append("ok")
        except StaleVersion:
            results.append("stale")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["stale"] * 7
    assert ctl.status()["latest_version"] == 2


def test_corrupt_state_is_reported(ctl, run_dir):
    (run_dir / STATE_FILE).write_text("{not json")
    with pytest.raises(ControllerStateError, match="cannot restore"):
        ScheduleController(run_dir)

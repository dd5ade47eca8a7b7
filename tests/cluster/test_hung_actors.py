"""SIGSTOP on each kind of actor of a live run (rollout engine, reward worker, learner rank): each
hang is found by the run's call timeouts and recovered from, and after a resume every step is in
metrics.jsonl exactly once. tools/fault_injection.py is the script; this runs its SIGSTOP part."""

import pytest
from fault_injection import Fault, run_with_faults

pytestmark = pytest.mark.integration

STOPS = [Fault(2, "rollout-0", "stop"), Fault(4, "reward-math-0", "stop"), Fault(6, "learner-1", "stop")]


def test_each_kind_of_hung_actor_is_detected_and_replaced(tmp_path, model_cache):
    result = run_with_faults(
        tmp_path / "runs",
        STOPS,
        steps=8,
        resume_steps=2,
        extra=[f"model.cache_dir={model_cache}"],
    )
    assert result["steps"] == list(range(1, 11))  # none lost, none repeated, across the restarts
    assert [(f["actor"], f["how"]) for f in result["injected"]] == [(f.actor, f.how) for f in STOPS]
    kinds = [(e["event"], e.get("actor")) for e in result["events"]]
    assert ("actor_hung", "rollout-0") in kinds and ("actor_recovered", "rollout-0") in kinds
    assert ("actor_hung", "reward-math-0") in kinds and ("actor_recovered", "reward-math-0") in kinds
    assert ("actor_hung", "learner") in kinds
    failures = [e for e in result["events"] if e["event"] == "learner_failed"]
    assert len(failures) == 1 and "hung" in failures[0]["error"]
    assert [e["event"] for e in result["events"]].count("resume") == 2  # after the failure, and the resume

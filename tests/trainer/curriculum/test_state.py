"""The curriculum: stage validation, plans, advance rules, mutations and their versions, the
orderings (joint, sequential, BWT-guided), DUMP and the entropy-aware rule, with hand-computed values."""

import json
import math
import pickle

import pytest

from counterpoint.trainer.curriculum.order import (
    best_order,
    bwt_guided_schedule,
    estimate_transfer,
    joint_schedule,
    predicted_score,
    sequential_schedule,
    transfer_metrics,
)
from counterpoint.trainer.curriculum.stages import (
    ScheduleConflict,
    ScheduleError,
    Stage,
    StaleVersion,
    UnknownName,
    parse_stages,
)
from counterpoint.trainer.curriculum.state import ScheduleState
from counterpoint.trainer.curriculum.weights import DumpSampler, entropy_aware_weights, softmax

DOMAINS = ("math", "code", "creative")


def two_stages(**first):
    return [
        {
            "name": "structured",
            "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0}},
            "advance": {"type": "steps", "steps": 2},
            **first,
        },
        {"name": "creative", "domains": {"creative": {"weight": 1.0}}},
    ]


def make(stages=None, **kw):
    clock = iter(range(1_000_000, 2_000_000))
    return ScheduleState(stages or two_stages(), domains=DOMAINS, clock=lambda: next(clock), **kw)


# --- validation ---


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ({"weight": -1.0}, "greater than or equal to 0"),
        ({"weight": float("nan")}, "finite"),
        ({"weight": float("inf")}, "finite"),
        ({"entropy_target": float("nan")}, "finite"),
    ],
)
def test_bad_weights_name_the_field(setting, fragment):
    stages = two_stages()
    stages[1]["domains"]["creative"] = setting
    with pytest.raises(ScheduleError) as err:
        make(stages)
    assert err.value.field.startswith("stages[1].domains.creative.")
    assert fragment in err.value.message


def test_all_zero_weights_and_rule_domains_are_refused():
    with pytest.raises(ScheduleError, match="all weights are zero") as err:
        make([{"name": "a", "domains": {"math": {"weight": 0}, "code": {"weight": 0}}}])
    assert err.value.field == "stages[0].domains"
    with pytest.raises(ScheduleError, match="not one of this stage's domains") as err:
        make([{"name": "a", "domains": {"math": {}}, "advance": {"type": "plateau", "domain": "code"}}])
    assert err.value.field == "stages[0].advance"


def test_unknown_rule_type_duplicate_stage_and_unknown_domain():
    with pytest.raises(ScheduleError, match="tag") as err:
        make([{"name": "a", "domains": {"math": {}}, "advance": {"type": "sometimes"}}])
    assert err.value.field == "stages[0].advance"
    with pytest.raises(ScheduleError, match="appears twice") as err:
        make([{"name": "a", "domains": {"math": {}}}, {"name": "a", "domains": {"code": {}}}])
    assert err.value.field == "stages[1].name"
    with pytest.raises(ScheduleError, match="unknown domain 'poetry'") as err:
        make([{"name": "a", "domains": {"poetry": {}}}])
    assert err.value.field == "stages[0].domains.poetry"
    with pytest.raises(ScheduleError, match="between 1 and 64"):
        ScheduleState([])


@pytest.mark.parametrize(
    "rule, close",
    [
        ({"type": "plateau", "domain": "math", "metric": "reward_maen"}, "'reward_mean'"),
        ({"type": "entropy", "domain": "math", "threshold": 0.2, "metric": "entropy_maen"}, "'entropy_mean'"),
        ({"type": "plateau", "domain": "math", "metric": "loss"}, "'loss_token_mean'"),
    ],
)
def test_a_rule_on_a_metric_the_run_never_reports_is_refused(rule, close):
    # such a rule would never fire: its metric is never in the step's per-domain metrics
    with pytest.raises(ScheduleError) as err:
        make([{"name": "a", "domains": {"math": {}}, "advance": rule}])
    assert err.value.field == "stages[0].advance.metric"
    assert f"unknown per-domain metric {rule['metric']!r}" in err.value.message and close in err.value.message
    with pytest.raises(ScheduleError, match="not a number") as err:  # a mapping of counts, not one number
        make([{"name": "a", "domains": {"math": {}}, "advance": {**rule, "metric": "reward_errors"}}])
    for metric in ("reward_mean", "entropy_mean", "reward_failure_fraction", "loss_token_mean", "kl_ref"):
        make([{"name": "a", "domains": {"math": {}}, "advance": {**rule, "metric": metric}}])


def test_parse_stages_reports_the_path():
    with pytest.raises(ScheduleError) as err:
        parse_stages([{"name": "ok", "domains": {"math": {}}}, {"name": "x", "domains": {"math": {"weight": "a lot"}}}])
    assert err.value.field == "stages[1].domains.math.weight"


# --- plans ---


def test_plan_normalises_positive_weights():
    s = make([{"name": "a", "domains": {"math": {"weight": 2}, "code": {"weight": 1}, "creative": {"weight": 0}}}])
    plan = s.plan(1, 60)
    assert plan.status == "train" and plan.stage == "a" and plan.kind == "rl" and plan.schedule_version == 1
    assert plan.prompts_per_domain == {"math": 40, "code": 20}  # the zero-weight domain is absent


def test_plan_paused_and_done():
    s = make()
    s.pause(author="op")
    assert s.plan(1, 60).status == "paused" and s.plan(1, 60).reason == "the run is paused"
    s.resume(author="op")
    s.pause("structured", author="op")
    assert s.plan(1, 60).reason == "stage 'structured' is paused"
    s.resume("structured", author="op")
    assert s.plan(1, 60).status == "train"
    s.finish(author="driver")
    assert s.plan(1, 60).status == "done"


def test_sft_stage_kind_reaches_the_plan():
    s = make([{"name": "demos", "kind": "sft", "domains": {"creative": {}}}])
    assert s.plan(1, 60).kind == "sft"


# --- advance rules ---


def test_steps_rule_advances_after_n_steps_and_records_it():
    s = make()
    assert s.observe(1, {}) is None
    entry = s.observe(2, {})
    assert entry.action == "advance" and entry.author == "schedule" and entry.step == 2
    assert entry.detail == {"from": "structured", "to": "creative"} and entry.version == s.version == 2
    assert s.progress["structured"].status == "finished" and s.progress["structured"].finished_at_step == 2
    assert s.plan(3, 60).stage == "creative" and s.plan(3, 60).schedule_version == 2


def test_repeated_step_reports_do_not_count():
    s = make()
    s.observe(1, {})
    s.observe(1, {})
    assert s.progress["structured"].steps == 1


def test_plateau_rule_hand_computed():
    # window 3, min_delta 0.05. After 5 values the best before the window is max(0.1, 0.3) = 0.3
    # and the window [0.32, 0.33, 0.34] peaks at 0.34: a gain of 0.04 <= 0.05, so it advances.
    s = make(
        [
            {
                "name": "a",
                "domains": {"math": {}},
                "advance": {"type": "plateau", "domain": "math", "window": 3, "min_delta": 0.05},
            },
            {"name": "b", "domains": {"code": {}}},
        ]
    )
    fired = [s.observe(i, {"math": {"reward_mean": r}}) for i, r in enumerate([0.1, 0.3, 0.32, 0.33, 0.34], 1)]
    assert fired[:4] == [None] * 4  # after 4: 0.33 - 0.1 = 0.23 > 0.05
    assert fired[4] is not None and "improved by 0.04" in fired[4].reason
    assert s.active_stage().name == "b"


def test_plateau_rule_min_mode_and_missing_metrics():
    s = make(
        [
            {
                "name": "a",
                "domains": {"math": {}},
                "advance": {
                    "type": "plateau",
                    "domain": "math",
                    "metric": "loss_token_mean",
                    "window": 2,
                    "min_delta": 0.1,
                    "mode": "min",
                },
            },
            {"name": "b", "domains": {"code": {}}},
        ]
    )
    assert s.observe(1, {"math": {"loss_token_mean": 2.0}}) is None
    assert s.observe(2, {"math": {}}) is None  # no value: nothing evaluated
    assert s.observe(3, {"math": {"loss_token_mean": 1.5}}) is None
    assert s.observe(4, {"math": {"loss_token_mean": float("nan")}}) is None
    # values 2.0 | 1.5, 1.45: best in window 1.45, improvement 2.0 - 1.45 = 0.55 > 0.1: keep going
    assert s.observe(5, {"math": {"loss_token_mean": 1.45}}) is None
    # 2.0, 1.5 | 1.45, 1.44: best before 1.5, improvement 0.06 <= 0.1: advance
    assert s.observe(6, {"math": {"loss_token_mean": 1.44}}) is not None


def test_entropy_rule_needs_consecutive_steps():
    s = make(
        [
            {
                "name": "a",
                "domains": {"creative": {}},
                "advance": {"type": "entropy", "domain": "creative", "threshold": 0.5, "consecutive_steps": 2},
            },
            {"name": "b", "domains": {"math": {}}},
        ]
    )
    fired = [s.observe(i, {"creative": {"entropy_mean": h}}) for i, h in enumerate([0.6, 0.4, 0.6, 0.45, 0.3], 1)]
    assert fired[:4] == [None] * 4 and fired[4] is not None  # streak 0, 1, 0, 1, 2


def test_entropy_rule_above():
    s = make(
        [
            {
                "name": "a",
                "domains": {"creative": {}},
                "advance": {"type": "entropy", "domain": "creative", "threshold": 2.0, "direction": "above"},
            },
            {"name": "b", "domains": {"math": {}}},
        ]
    )
    assert s.observe(1, {"creative": {"entropy_mean": 2.0}}) is None  # strictly above
    assert s.observe(2, {"creative": {"entropy_mean": 2.01}}) is not None


def test_manual_stage_ends_only_by_hand():
    s = make([{"name": "a", "domains": {"math": {}}}, {"name": "b", "domains": {"code": {}}}])
    for i in range(1, 50):
        assert s.observe(i, {"math": {"reward_mean": 0.5}}) is None
    v = s.advance(author="alice", reason="enough")
    assert v == 2 and s.active_stage().name == "b" and s.entries[-1].author == "alice"
    s.advance(author="alice")
    assert s.plan(51, 60).status == "done" and s.plan(51, 60).reason == "every stage is finished"
    with pytest.raises(ScheduleConflict, match="no active stage"):
        s.advance(author="alice")


# --- mutations and versions ---


def test_every_mutation_makes_a_version_with_author_and_reason():
    s = make()
    s.pause(author="alice", reason="r1")
    s.set_domain("structured", "math", weight=0.5, author="bob", reason="r2")
    s.replace_stages(list(reversed(s.stages)), author="carol", reason="r3")
    s.resume(author="dave", reason="r4")
    assert [(e.version, e.author, e.action, e.reason) for e in s.audit()] == [
        (1, "system", "create", "initial schedule"),
        (2, "alice", "pause", "r1"),
        (3, "bob", "set_domain", "r2"),
        (4, "carol", "replace", "r3"),
        (5, "dave", "resume", "r4"),
    ]
    assert [e.version for e in s.audit(since=3)] == [4, 5]
    assert s.snapshot(2)["paused"] is True and s.snapshot(2)["stages"][0]["name"] == "structured"
    assert s.snapshot(4)["stages"][0]["name"] == "creative"
    assert s.entries[0].time == "1970-01-12T13:46:40.000+00:00"  # the injected clock, 1e6 s


def test_no_op_changes_make_no_version():
    s = make()
    assert s.resume(author="op") == 1
    assert s.set_domain("structured", "math", weight=2.0, author="op") == 1
    assert s.replace_stages(s.stages, author="op") == 1


def test_stale_base_version():
    s = make()
    s.pause(author="a", base_version=1)
    with pytest.raises(StaleVersion) as err:
        s.resume(author="b", base_version=1)
    assert err.value.current_version == 2 and err.value.field == "base_version"
    assert s.paused and s.version == 2


def test_set_domain_rules():
    s = make()
    s.set_domain("structured", "code", entropy_target=0.3, author="op")
    assert s.stages[0].domains["code"].entropy_target == 0.3
    s.set_domain("structured", "code", clear_entropy_target=True, author="op")
    assert s.stages[0].domains["code"].entropy_target is None
    with pytest.raises(UnknownName) as err:
        s.set_domain("nope", "math", weight=1, author="op")
    assert err.value.field == "stage"
    with pytest.raises(UnknownName, match="add one by replacing") as err:
        s.set_domain("structured", "creative", weight=1, author="op")
    assert err.value.field == "domain"
    s.set_domain("structured", "math", weight=0, author="op")
    with pytest.raises(ScheduleError, match="all weights are zero") as err:
        s.set_domain("structured", "code", weight=0, author="op")
    assert err.value.field == "weight"
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ScheduleError, match="finite number >= 0"):
            s.set_domain("structured", "code", weight=bad, author="op")
    with pytest.raises(ScheduleError, match="give a weight"):
        s.set_domain("structured", "code", author="op")


def test_reorder_rules():
    s = make(
        [
            {"name": n, "domains": {d: {}}, "advance": {"type": "steps", "steps": 1}}
            for n, d in (("a", "math"), ("b", "code"), ("c", "creative"))
        ]
    )
    by = {x.name: x for x in s.stages}
    with pytest.raises(ScheduleError, match="stage 'c' is missing") as err:
        s.replace_stages([by["b"], by["a"]], author="op")
    assert err.value.field == "stages"
    with pytest.raises(ScheduleError, match="unknown stage 'd'") as err:
        s.replace_stages([*s.stages, Stage(name="d", domains={"math": {}})], author="op")
    assert err.value.field == "stages[3].name"
    s.observe(1, {})  # a finishes, b is active
    with pytest.raises(ScheduleConflict, match="finished stages must stay first"):
        s.replace_stages([by["b"], by["a"], by["c"]], author="op")
    changed_a = by["a"].model_copy(update={"kind": "sft"})
    with pytest.raises(ScheduleConflict, match="'a' is finished and cannot be changed"):
        s.replace_stages([changed_a, by["b"], by["c"]], author="op")
    with pytest.raises(ScheduleConflict, match="'b' is active and cannot be removed"):
        s.replace_stages([by["a"], by["c"]], author="op", allow_stage_changes=True)
    # moving the active stage behind another makes that one active; b keeps its progress
    s.progress["b"].steps = 0
    s.replace_stages([by["a"], by["c"], by["b"]], author="op", reason="creative first")
    assert s.active_stage().name == "c" and s.progress["b"].status == "pending"
    assert s.entries[-1].detail == {"order": ["a", "c", "b"], "added": [], "removed": []}
    # with allow_stage_changes: add a stage, drop a pending one
    s.replace_stages([by["a"], by["c"], Stage(name="d", domains={"math": {}})], author="op", allow_stage_changes=True)
    assert [x.name for x in s.stages] == ["a", "c", "d"] and "b" not in s.progress


def test_finished_run_and_finished_stage_refuse_changes():
    s = make()
    s.observe(1, {})
    s.observe(2, {})  # structured finished
    with pytest.raises(ScheduleConflict, match="cannot be changed or resumed"):
        s.resume("structured", author="op")
    with pytest.raises(ScheduleConflict):
        s.pause("structured", author="op")
    v = s.finish(author="driver")
    assert s.finish(author="driver") == v  # idempotent
    with pytest.raises(ScheduleConflict, match="the run is finished") as err:
        s.pause(author="op")
    assert err.value.field == "run"


def test_author_and_reason_checked():
    s = make()
    with pytest.raises(ScheduleError) as err:
        s.pause(author="")
    assert err.value.field == "author"
    with pytest.raises(ScheduleError) as err:
        s.pause(author="op", reason="x" * 1001)
    assert err.value.field == "reason"


def test_rewind_restores_progress_and_rule_windows_as_a_new_version():
    s = make(
        [
            {"name": "a", "domains": {"math": {}}, "advance": {"type": "plateau", "domain": "math", "window": 2}},
            {"name": "b", "domains": {"creative": {}}},
        ]
    )
    s.observe(1, {"math": {"reward_mean": 0.5}})
    saved = json.loads(json.dumps(s.state_dict()))
    assert s.rewind(saved, author="resume") == s.version  # nothing moved since: no version
    for step in (2, 3, 4):
        s.observe(step, {"math": {"reward_mean": 0.5}})  # flat: the plateau rule advances "a"
    s.set_domain("b", "creative", weight=2.0, author="op")
    assert s.active_stage().name == "b"
    version = s.rewind(saved, author="resume", reason="resumed from step 1")
    assert s.active_stage().name == "a" and s.progress["a"].steps == 1 and s.progress["a"].series == [0.5]
    assert s.last_step == 1 and s.stages[1].domains["creative"].weight == 1.0  # the later edit is undone
    entry = s.audit()[-1]
    assert (entry.version, entry.action, entry.author) == (version, "rewind", "resume")
    assert entry.detail == {"to_version": 1, "undone": [2, 3], "step": 1}
    assert [e.action for e in s.audit()] == ["create", "advance", "set_domain", "rewind"]  # history kept


def test_state_dict_round_trip_through_json():
    s = make(
        [
            {
                "name": "a",
                "domains": {"math": {}, "code": {}},
                "advance": {"type": "plateau", "domain": "math", "window": 2},
                "weighting": {"type": "dump"},
            },
            {"name": "b", "domains": {"creative": {}}},
        ]
    )
    s.observe(1, {"math": {"reward_mean": 0.2, "advantage_abs_mean": 0.5, "samples": 8, "entropy_mean": 0.7}})
    s.pause(author="op", reason="lunch")
    state = json.loads(json.dumps(s.state_dict(), allow_nan=False))
    t = ScheduleState.from_state_dict(state)
    assert t.state_dict() == s.state_dict()
    assert t.plan(2, 60) == s.plan(2, 60)
    t.resume(author="op")
    s.resume(author="op")
    assert t.plan(2, 60) == s.plan(2, 60) and t.plan(2, 60).status == "train"


# --- weights inside a stage ---


def test_entropy_aware_weights_hand_computed():
    out = entropy_aware_weights({"math": 2.0, "code": 1.0}, {"math": 0.1, "code": 0.2}, {"code": 0.3}, factor=0.5)
    assert out == {"math": 2.0, "code": 0.5}  # math has no target; code 0.2 < 0.3 is halved
    assert entropy_aware_weights({"code": 1.0}, {"code": 0.3}, {"code": 0.3}, 0.5) == {"code": 1.0}  # not below
    assert entropy_aware_weights({"code": 1.0}, {}, {"code": 0.3}, 0.5) == {"code": 1.0}  # not measured yet
    with pytest.raises(ValueError):
        entropy_aware_weights({}, {}, {}, 1.5)


def test_plan_applies_the_entropy_budget():
    s = make(
        [
            {
                "name": "a",
                "domains": {"math": {"weight": 2}, "code": {"weight": 1, "entropy_target": 0.3}},
                "below_entropy_target_factor": 0.5,
            }
        ]
    )
    s.observe(1, {"code": {"entropy_mean": 0.2}})
    plan = s.plan(2, 60)
    assert plan.prompts_per_domain == {"math": 48, "code": 12}  # 2 : 0.5
    assert plan.entropy_targets == {"code": 0.3}
    s.observe(2, {"code": {"entropy_mean": 0.4}})
    assert s.plan(3, 60).prompts_per_domain == {"math": 40, "code": 20}


def test_plan_keeps_weights_when_every_domain_would_be_held_back():
    s = make([{"name": "a", "domains": {"code": {"entropy_target": 0.3}}, "below_entropy_target_factor": 0.0}])
    s.observe(1, {"code": {"entropy_mean": 0.1}})
    assert s.plan(2, 60).prompts_per_domain == {"code": 60}


def test_dump_ucb_hand_computed():
    d = DumpSampler(window=2, c=1.0, tau=0.1)
    d.update("a", [1.0, -0.0, 1.0])  # window keeps [0.0, 1.0]: mean 0.5; n_a = 3
    d.update("b", [0.5])  # mean 0.5; n_b = 1; N = 4
    ucb = d.ucb(["a", "b"])
    # UCB_a = 0.5 + sqrt(2 ln 5 / 4) = 0.5 + 0.897061 ; UCB_b = 0.5 + sqrt(2 ln 5 / 2) = 0.5 + 1.268636
    assert ucb["a"] == pytest.approx(1.397061, abs=1e-6)
    assert ucb["b"] == pytest.approx(1.768636, abs=1e-6)
    # softmax over UCB / 0.1: p_a = 1 / (1 + exp(3.715750)) = 0.023759
    w = d.weights(["a", "b"])
    assert w["a"] == pytest.approx(0.023759, abs=1e-6) and sum(w.values()) == pytest.approx(1.0)
    # a domain never sampled gets the largest bonus: sqrt(2 ln 5 / 1) = 1.794123
    assert d.ucb(["a", "b", "c"])["c"] == pytest.approx(1.794123, abs=1e-6)


def test_dump_state_and_update_mean():
    d = DumpSampler(window=3)
    d.update_mean("a", 0.4, 10)  # window full of 0.4, count 10
    e = DumpSampler(window=3)
    e.load_state_dict(json.loads(json.dumps(d.state_dict())))
    assert e.ucb(["a"]) == d.ucb(["a"]) == pytest.approx({"a": 0.4 + math.sqrt(2 * math.log(11) / 11)})


def test_softmax_is_stable():
    assert softmax({"a": 1000.0, "b": 999.0}, 0.1)["a"] == pytest.approx(1 / (1 + math.exp(-10)))


def test_plan_with_dump_weighting_uses_advantages():
    s = make([{"name": "a", "domains": {"math": {}, "code": {}}, "weighting": {"type": "dump", "window": 300}}])
    s.observe(
        1, {"math": {"advantage_abs_mean": 0.9, "samples": 50}, "code": {"advantage_abs_mean": 0.1, "samples": 50}}
    )
    w = s.plan(2, 10_000).prompts_per_domain
    # equal counts, so equal bonuses: softmax((0.9 - 0.1) / 0.1) -> math share 1 / (1 + e^-8)
    assert w["math"] == round(10_000 / (1 + math.exp(-8)))


# --- orderings ---

B = {
    "math": {"creative": -0.3, "code": 0.2},
    "creative": {"math": -0.1, "code": 0.0},
    "code": {"math": 0.0, "creative": -0.05},
}


def test_transfer_metrics_hand_computed():
    r = [[0.5, 0.1, 0.0], [0.4, 0.6, 0.2], [0.3, 0.5, 0.7]]
    m = transfer_metrics(r, baseline=[0.0, 0.1, 0.1])
    assert m.bwt == pytest.approx(((0.3 - 0.5) + (0.5 - 0.6)) / 2)  # -0.15
    assert m.fwt == pytest.approx(((0.1 - 0.1) + (0.2 - 0.1)) / 2)  # 0.05
    assert transfer_metrics(r).fwt is None
    with pytest.raises(ValueError):
        transfer_metrics([[1.0]])


def test_estimate_transfer():
    b = estimate_transfer({"math": 0.6, "creative": 0.4}, {("math", "creative"): 0.3, ("creative", "math"): 0.35})
    assert b["math"]["creative"] == pytest.approx(-0.3) and b["creative"]["math"] == pytest.approx(-0.05)


def test_best_order_exhaustive_and_greedy():
    # the six orders score: m,c,cr -0.15; m,cr,c -0.1; c,m,cr -0.35; c,cr,m -0.15; cr,m,c 0.1; cr,c,m -0.1
    assert predicted_score(["creative", "math", "code"], B) == pytest.approx(0.1)
    assert best_order(["math", "code", "creative"], B) == ["creative", "math", "code"]
    # greedy: code has the largest transfer onto the rest (-0.05 vs -0.1, -0.1), then creative (-0.1 vs -0.3)
    assert best_order(["math", "code", "creative"], B, exhaustive_max=0) == ["code", "creative", "math"]
    stages = bwt_guided_schedule(["math", "code", "creative"], B, steps_per_stage=10)
    assert [s.name for s in stages] == ["creative", "math", "code"] and stages[0].advance.steps == 10


def test_joint_and_sequential_schedules():
    joint = joint_schedule({"math": 2.0, "code": 1.0})
    assert len(joint) == 1 and joint[0].advance.type == "manual" and joint[0].domains["math"].weight == 2.0
    seq = sequential_schedule(["math", "creative"], steps_per_stage=5)
    assert [s.name for s in seq] == ["math", "creative"] and all(s.advance.steps == 5 for s in seq)
    with pytest.raises(ValueError):
        sequential_schedule(["math", "math"], steps_per_stage=5)
    s = ScheduleState(seq)
    for i in range(1, 6):
        s.observe(i, {})
    assert s.active_stage().name == "creative"


def test_errors_survive_pickling():
    """Ray pickles an actor's exceptions; the fields the API maps to a status must survive."""
    for err in (
        ScheduleError("stages[1].name", "x"),
        UnknownName("stage", "y"),
        ScheduleConflict("run", "z"),
        StaleVersion(3, 5),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and back.field == err.field and str(back) == str(err)
    assert pickle.loads(pickle.dumps(StaleVersion(3, 5))).current_version == 5

"""Study files: the shipped ones load and hold their comparisons equal; mistakes name the field."""

from __future__ import annotations

import pytest

from counterpoint.study.spec import (
    StudyError,
    check_study,
    differences,
    load_study,
    parse_study,
    resolved,
    run_config_data,
    shipped_studies,
    with_changes,
)


def spec_data(**over):
    data = {
        "name": "t",
        "steps": 10,
        "seeds": [0, 1],
        "conditions": {"a": {}, "b": {"set": {"learner.per_domain.creative.loss": {"type": "kl_cov"}}}},
    }
    data.update(over)
    return data


def test_shipped_studies_load_and_their_conditions_make_valid_configs():
    assert {"quick", "collapse", "controls", "default_run"} <= set(shipped_studies())
    for name in ("quick", "collapse", "controls", "default_run"):
        spec = load_study(name)
        check_study(spec)  # raises on a config error or a held-equal field that differs
        assert len(spec.seeds) >= (1 if name == "quick" else 3)


def test_the_default_run_study_runs_the_default_config_unchanged():
    from counterpoint.config import load_config

    spec = load_study("default_run")
    (cond,) = spec.conditions.values()
    assert not spec.set and not cond.set and spec.steps == load_config("default").run.steps


def test_controls_conditions_change_only_what_they_name():
    spec = load_study("controls")
    diff = differences(spec)
    assert diff["none"] == {}
    assert set(diff["kl_cov"]) == {
        "learner.per_domain.creative.loss.kl_coef",
        "learner.per_domain.creative.loss.select_fraction",
        "learner.per_domain.creative.loss.type",
    }
    for name in ("entropy_bonus", "adaptive_target", "clip_cov", "kl_cov", "gppo"):
        assert all(
            k.startswith("learner.per_domain.creative") or k.startswith("schedule.policy.stages") for k in diff[name]
        ), (name, diff[name])


def test_stage_lengths_follow_the_steps():
    spec = with_changes(load_study("collapse"), steps=8)
    data = run_config_data(spec, "structured_creative_novelty", seed=1)
    assert data["run"]["steps"] == 8 and data["run"]["seed"] == 1
    assert data["schedule"]["policy"]["stages"][0]["advance"] == {"type": "steps", "steps": 4}
    assert run_config_data(spec, "bwt_novelty", 0)["schedule"]["policy"]["steps_per_stage"] == 2


def test_a_condition_that_changes_a_held_field_is_refused():
    spec = parse_study(spec_data(conditions={"a": {}, "b": {"set": {"learner.mini_batches": 2}}}))
    with pytest.raises(StudyError, match=r"conditions\.b: changes learner\.mini_batches"):
        check_study(spec)
    ok = parse_study(
        spec_data(conditions={"a": {}, "b": {"set": {"learner.mini_batches": 2}}}, hold_equal=["learner.learning_rate"])
    )
    check_study(ok)


def test_a_condition_that_makes_a_bad_config_names_itself():
    spec = parse_study(spec_data(conditions={"a": {}, "b": {"set": {"learner.learning_rate": -1}}}))
    with pytest.raises(StudyError, match=r"(?s)condition .b. .*learner.learning_rate: Input should be greater than 0"):
        check_study(spec)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"seeds": [0, 0]}, "listed twice"),
        ({"seeds": []}, "seeds"),
        (
            {"claims": [{"claim": "x", "test": {"test": "change", "condition": "zz", "metric": "m", "expect": "up"}}]},
            "unknown conditions",
        ),
        (
            {
                "claims": [
                    {"claim": "x", "test": {"test": "change", "condition": "a", "metric": "m", "expect": "greater"}}
                ]
            },
            "expects `up` or `down`",
        ),
        (
            {
                "claims": [
                    {"claim": "x", "test": {"test": "difference", "condition": "a", "metric": "m", "expect": "less"}}
                ]
            },
            "needs than",
        ),
        ({"conditions": {"a": {"best_of": {"conditions": ["nope"], "score": "s"}}}}, "unknown conditions"),
        ({"stepz": 3}, "stepz"),
    ],
)
def test_a_malformed_study_names_the_field(over, message):
    with pytest.raises(StudyError, match=message):
        parse_study(spec_data(**over))


def test_only_keeps_what_a_best_of_condition_chooses_among():
    spec = with_changes(load_study("controls"), only=["best_structured_first"])
    assert set(spec.conditions) == {
        "best_structured_first",
        "none",
        "entropy_bonus",
        "adaptive_target",
        "clip_cov",
        "kl_cov",
        "gppo",
        "sft_diverse",
        "diversity_weighted",
    }
    with pytest.raises(StudyError, match="unknown conditions"):
        with_changes(load_study("controls"), only=["nope"])


def test_best_of_takes_the_chosen_conditions_overrides_then_its_own():
    spec = load_study("controls")
    cfg = resolved(spec, "best_structured_first", 0, {"best_structured_first": "kl_cov"})
    assert cfg["learner"]["per_domain"]["creative"]["loss"]["type"] == "kl_cov"
    assert [s["name"] for s in cfg["schedule"]["policy"]["stages"]] == ["structured", "joint"]
    with pytest.raises(StudyError, match="resolved only once"):
        run_config_data(spec, "best_structured_first", 0)


def test_unknown_study_and_bad_files(tmp_path):
    with pytest.raises(StudyError, match="shipped studies are"):
        load_study("no-such-study")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(StudyError, match="not valid YAML"):
        load_study(str(bad))
    missing_base = tmp_path / "s.yaml"
    missing_base.write_text("name: s\nconfig: nowhere.yaml\nsteps: 2\nseeds: [0]\nconditions: {a: {}}\n")
    with pytest.raises(StudyError, match="neither a file next to the study nor a shipped config"):
        check_study(load_study(str(missing_base)))


def test_a_users_study_finds_its_base_config_next_to_it(tmp_path):
    (tmp_path / "mine.yaml").write_text("run: {steps: 5}\ngeneration: {prompts_per_step: 6}\n")
    (tmp_path / "s.yaml").write_text("name: s\nconfig: mine.yaml\nsteps: 2\nseeds: [0]\nconditions: {a: {}}\n")
    spec = load_study(str(tmp_path / "s.yaml"))
    cfg = resolved(spec, "a", 0)
    assert cfg["generation"]["prompts_per_step"] == 6 and cfg["run"]["steps"] == 2


def test_command_line_overrides_reach_every_run():
    spec = with_changes(load_study("quick"), seeds=[3, 4], overrides=["generation.prompts_per_step=8"])
    assert spec.seeds == [3, 4]
    for cond in spec.conditions:
        assert resolved(spec, cond, 3)["generation"]["prompts_per_step"] == 8
    with pytest.raises(StudyError, match="section.key=value"):
        with_changes(spec, overrides=["novalue"])

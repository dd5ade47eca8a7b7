"""Config validation: the shipped default parses; bad input names the field to fix."""

import json
import subprocess
import sys

import pytest

from counterpoint.config import ConfigError, config_from_dict, load_config, resolved_json, split_by_weight


def test_default_config_parses_and_round_trips():
    cfg = load_config()
    assert set(cfg.domains) == {"math", "code", "creative"}
    again = config_from_dict(json.loads(resolved_json(cfg)))
    assert again == cfg


@pytest.mark.parametrize(
    "override, field, hint",
    [
        ("learner.rankz=2", "learner.rankz", "unknown key"),
        ("generation.samples_per_prompt=1", "generation.samples_per_prompt", "greater than or equal to 2"),
        ("learner.learning_rate=fast", "learner.learning_rate", "valid number"),
        ("domains.poetry={weight: 1}", "domains.poetry.kind", "required (one of math, code, creative, python)"),
        ("domains.poetry={kind: verse}", "domains.poetry.kind", "unknown kind 'verse'"),
        ("domains.Poetry={kind: creative}", "domains.Poetry", "a domain name is a lowercase letter"),
        ("domains.algebra={kind: math, suite: nope}", "domains.algebra.suite", "'synthetic', 'gsm' or 'champ'"),
        ("domains.code.suite=gsm", "domains.code.suite", "'synthetic' or 'humaneval'"),
        ("domains.code.eval.prompts=0", "domains.code.eval.prompts", "greater than or equal to 1"),
        ("domains.code.reward.sandbox.cpu_seconds=0", "domains.code.reward.sandbox.cpu_seconds", "greater than"),
        ("domains.math.reward.sandbox={seccomp: false}", "domains.math.reward.sandbox", "unknown key"),
        ("domains.math.eval_prompts=4", "domains.math.eval_prompts", "unknown key"),
        ("code_sandbox.seccomp=false", "code_sandbox", "unknown key"),
        ("learner.zero_stage=5", "learner.zero_stage", "0, 1, 2 or 3"),
        ("domains.math.weight=-1", "domains.math.weight", "greater than or equal to 0"),
    ],
)
def test_bad_fields_are_named(override, field, hint):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert field in str(err.value) and hint in str(err.value)


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="divisible by model.tiny.num_heads"):
        load_config(overrides=["model.tiny.num_heads=3"])
    with pytest.raises(ConfigError, match="at least one domain needs a weight above 0"):
        load_config(overrides=[f"domains.{d}.weight=0" for d in ("math", "code", "creative")])
    with pytest.raises(ConfigError, match="learner.ranks: more ranks than sequences"):
        load_config(overrides=["generation.prompts_per_step=1", "generation.samples_per_prompt=2", "learner.ranks=3"])
    with pytest.raises(ConfigError, match="model.path: required"):
        load_config(overrides=["model.source=path"])


def test_domain_kind_defaults_to_the_name_and_a_second_domain_of_a_kind_is_config():
    cfg = load_config()
    assert {n: d.kind for n, d in cfg.domains.items()} == {"math": "math", "code": "code", "creative": "creative"}
    assert cfg.domains["creative"].eval.samples_per_prompt == 4 and cfg.domains["math"].eval.prompts == 128
    assert cfg.domains["math"].eval.samples_per_prompt == 4  # pass@k needs a group
    cfg = load_config(
        overrides=[
            "domains.algebra={kind: math, suite: gsm, reward: {timeout_seconds: 2}}",
            "domains.code.reward.sandbox.seccomp=false",
        ]
    )
    assert (cfg.domains["algebra"].kind, cfg.domains["algebra"].suite) == ("math", "gsm")
    assert cfg.domains["code"].reward.sandbox.seccomp is False
    assert set(cfg.prompts_per_domain()) == {"math", "code", "creative", "algebra"}
    again = config_from_dict(json.loads(resolved_json(cfg)))  # the resolved config names every kind
    assert again == cfg and json.loads(resolved_json(cfg))["domains"]["math"]["kind"] == "math"


def test_a_judge_weight_needs_a_judge():
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["domains.poems={kind: creative, reward: {judge_weight: 1.0}}"])
    assert "domains.poems.reward.judge: required when domains.poems.reward.judge_weight is above 0" in str(err.value)
    cfg = load_config(overrides=["domains.creative.reward={judge_weight: 1.0, judge: {model_path: /models/judge}}"])
    assert cfg.domains["creative"].reward.judge.model_path == "/models/judge"


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_split_by_weight_sums_exactly():
    assert split_by_weight(24, {"a": 1, "b": 1, "c": 1}) == {"a": 8, "b": 8, "c": 8}
    shares = split_by_weight(10, {"a": 2, "b": 1, "c": 0})
    assert sum(shares.values()) == 10 and shares["c"] == 0 and shares["a"] > shares["b"]


def test_cli_bad_config_exits_nonzero_naming_the_field():
    proc = subprocess.run(
        [sys.executable, "-m", "counterpoint", "run", "--set", "learner.rankz=2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "learner.rankz" in proc.stderr and "unknown key" in proc.stderr


def test_cli_help_explains_itself():
    top = subprocess.run([sys.executable, "-m", "counterpoint", "--help"], capture_output=True, text=True, timeout=60)
    run = subprocess.run(
        [sys.executable, "-m", "counterpoint", "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert top.returncode == 0 and "embedded Ray" in top.stdout and "run" in top.stdout
    assert run.returncode == 0 and "metrics.jsonl" in run.stdout and "--set" in run.stdout


def test_every_shipped_config_parses():
    from counterpoint.config import default_config_path

    files = sorted(default_config_path().parent.glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        load_config(path)


def test_per_domain_overrides_inherit_and_validate():
    cfg = load_config(overrides=["learner.per_domain={creative: {loss: {type: kl_cov}}}", "learner.loss={type: gppo}"])
    assert cfg.learner.loss_for("creative").type == "kl_cov"
    assert cfg.learner.loss_for("math").type == "gppo"  # inherits the run's default
    with pytest.raises(ConfigError, match="learner.per_domain.poetry: not a configured domain"):
        load_config(overrides=["learner.per_domain={poetry: {loss: {type: gppo}}}"])
    with pytest.raises(ConfigError, match="learner.loss"):
        load_config(overrides=["learner.loss={type: nope}"])


def test_bwt_policy_needs_two_distinct_known_domains():
    cfg = load_config(
        overrides=["schedule.policy=bwt", "schedule.policy.order=[math, creative]", "schedule.policy.steps_per_stage=5"]
    )
    assert cfg.probe_domains() == ["math", "creative"]
    # before its probes have chosen, the schedule is the configured order; after, theirs
    assert [s.name for s in cfg.initial_stages()] == ["math", "creative"]
    assert [s.name for s in cfg.initial_stages(["creative", "math"])] == ["creative", "math"]
    assert load_config(overrides=["schedule.policy=bwt"]).probe_domains() == ["math", "code", "creative"]
    with pytest.raises(
        ConfigError, match="schedule.policy.order: the bwt policy probes the transfer between two or more"
    ):
        load_config(overrides=["schedule.policy=bwt", "schedule.policy.order=[math]"])
    with pytest.raises(ConfigError, match="schedule.policy.order: a domain is listed twice"):
        load_config(overrides=["schedule.policy=bwt", "schedule.policy.order=[math, math]"])
    with pytest.raises(ConfigError, match="schedule.policy.order: unknown domains"):
        load_config(overrides=["schedule.policy=bwt", "schedule.policy.order=[math, poetry]"])
    with pytest.raises(ConfigError, match="schedule.policy.probe_steps"):
        load_config(overrides=["schedule.policy=bwt", "schedule.policy.probe_steps=0"])


def test_the_reward_failure_bound_is_a_share():
    assert load_config().run.max_reward_failure_fraction == 0.5
    assert load_config(overrides=["run.max_reward_failure_fraction=0"]).run.max_reward_failure_fraction == 0.0
    for bad, hint in (("1.5", "less than or equal to 1"), ("-0.1", "greater than or equal to 0"), (".nan", "finite")):
        with pytest.raises(ConfigError, match=rf"run\.max_reward_failure_fraction: .*{hint}"):
            load_config(overrides=[f"run.max_reward_failure_fraction={bad}"])


def test_a_stage_rule_on_a_misspelt_metric_is_refused_naming_the_field():
    stages = [
        {
            "name": "a",
            "domains": {"math": {}},
            "advance": {"type": "plateau", "domain": "math", "metric": "reward_maen"},
        }
    ]
    with pytest.raises(ConfigError) as err:
        config_from_dict({"schedule": {"policy": {"type": "stages", "stages": stages}}})
    message = str(err.value)
    assert "schedule.policy.stages[0].advance.metric: unknown per-domain metric 'reward_maen'" in message
    assert "did you mean 'reward_mean'" in message
    stages[0]["advance"]["metric"] = "reward_mean"
    config_from_dict({"schedule": {"policy": {"type": "stages", "stages": stages}}})


def test_a_setting_the_policy_does_not_use_is_an_error_not_ignored():
    # schedule.order used to be read only by the sequential and bwt policies and ignored by the others
    with pytest.raises(ConfigError, match=r"schedule\.policy\.order: unknown key"):
        load_config(overrides=["schedule.policy=joint", "schedule.policy.order=[math, code]"])
    with pytest.raises(ConfigError, match=r"schedule\.order: unknown key"):
        load_config(overrides=["schedule.order=[math, code]"])
    assert load_config(
        overrides=["schedule.policy=sequential", "schedule.policy.order=[code, math]"]
    ).schedule.policy.order

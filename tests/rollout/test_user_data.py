"""The user's data as domains: every source type, the field mapping, both split modes, and every
bad input failing with a message that names what to fix (docs/data.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from counterpoint.config import ConfigError, config_from_dict, load_config
from counterpoint.rollout.data import DataError, held_out, load_rows
from counterpoint.rollout.domain_config import EvalFraction
from counterpoint.rollout.domains import build_domain, check_sources, domain_config, task_source
from counterpoint.rollout.tasks.files import FileCode, FileCreative, FileMath, PluginDomain, RowSource

MATH_ROWS = [{"question": f"What is {i} plus {i}?", "gold": 2 * i, "worked": f" {2 * i}"} for i in range(40)]
CHECK = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(3) == 6\n"
CODE_ROWS = [
    {"src": f"def double_{i}(x):\n    return", "tests": CHECK, "fn": f"double_{i}", "body": " x * 2\n"}
    for i in range(20)
]


def write(path: Path, rows: list[dict]) -> Path:
    """`rows` as a data file of `path`'s type."""
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def math_domain(path: Path, **source) -> dict:
    return {
        "kind": "math",
        "source": {"type": "file", "path": str(path), "prompt": "question", "answer": "gold", **source},
    }


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_every_file_type_maps_fields_into_math_prompts(tmp_path, suffix):
    path = write(tmp_path / f"math{suffix}", MATH_ROWS)
    cfg = domain_config("sums", math_domain(path, demonstration="worked", eval={"fraction": 0.25}))
    source = task_source("sums", cfg, seed=0)
    assert isinstance(source, RowSource) and isinstance(source.domain, FileMath)
    assert (source.domain.name, source.domain.kind, source.domain.suite) == ("sums", "math", "file")
    drawn = source.next_batch(5)
    by_text = {r["question"]: r for r in MATH_ROWS}
    for prompt, demo in drawn:
        row = by_text[prompt.text]
        assert prompt.domain == "sums" and prompt.reference == {"answer": str(row["gold"])}  # CSV: "12", not 12.0
        assert demo == row["worked"]
    held = {p.text for p in source.eval_prompts()}
    assert held and not held & {p.text for p, _ in source.next_batch(200)}  # never trained on


def test_hf_disk_reads_a_saved_dataset_and_its_splits(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = [{"text": f"Write a line about the sea, number {i}.", "theme": "sea"} for i in range(12)]
    DatasetDict({"train": Dataset.from_list(rows[:8]), "test": Dataset.from_list(rows[8:])}).save_to_disk(
        tmp_path / "d"
    )
    Dataset.from_list(rows).save_to_disk(tmp_path / "single")
    cfg = domain_config(
        "poems",
        {
            "kind": "creative",
            "source": {"type": "hf_disk", "path": str(tmp_path / "d"), "prompt": "text", "topic": "theme"},
        },
    )
    assert cfg.source.eval == EvalFraction()  # default: a tenth held out
    cfg = domain_config("poems", {**cfg.model_dump(), "source": {**cfg.source.model_dump(), "eval": {"split": "test"}}})
    source = task_source("poems", cfg, seed=0)
    assert isinstance(source.domain, FileCreative) and source.domain.suite == "hf_disk"
    assert [p.text for p in source.eval_prompts()] == [r["text"] for r in rows[8:]]
    assert {p.text for p, _ in source.next_batch(8)} == {r["text"] for r in rows[:8]}
    assert source.eval_prompts()[0].reference == {"topic": "sea"}
    single = load_rows(
        "domains.poems.source",
        "creative",
        domain_config(
            "poems",
            {"kind": "creative", "source": {"type": "hf_disk", "path": str(tmp_path / "single"), "prompt": "text"}},
        ).source,
    )
    assert len(single.train) + len(single.eval) == 12
    with pytest.raises(DataError, match=r"domains.poems.source.path: .*no split 'validation' \(splits: train, test\)"):
        bad = domain_config("poems", {"kind": "creative", "source": {**cfg.source.model_dump(), "split": "validation"}})
        load_rows("domains.poems.source", "creative", bad.source)


def test_code_rows_hold_humaneval_tests_or_io_pairs(tmp_path):
    path = write(tmp_path / "code.parquet", CODE_ROWS)
    cfg = domain_config(
        "funcs",
        {
            "kind": "code",
            "source": {"path": str(path), "prompt": "src", "entry_point": "fn", "demonstration": "body"},
        },
    )
    source = task_source("funcs", cfg, seed=0)
    assert isinstance(source.domain, FileCode)
    prompt, demo = source.next_batch(1)[0]
    assert prompt.reference["test"] == CHECK and prompt.reference["entry"].startswith("double_") and demo == " x * 2\n"
    pairs = [{"src": "def inc(x):\n    return", "tests": [[[1], 2], [[5], 6]], "fn": "inc"}] * 3
    path = write(tmp_path / "pairs.json", pairs)
    domain = build_domain(
        "funcs", {"kind": "code", "source": {"path": str(path), "prompt": "src", "entry_point": "fn"}}
    )
    prompt, _ = domain.item(pairs[0], "funcs/train/1")
    assert prompt.reference == {"entry": "inc", "tests": [[[1], 2], [[5], 6]]}


def test_fraction_split_is_seeded_by_row_hash_and_a_file_split_is_its_own(tmp_path):
    texts = [r["question"] for r in MATH_ROWS]
    split = EvalFraction(fraction=0.25, seed=0)
    assert [held_out(t, split) for t in texts] == [held_out(t, split) for t in texts]  # deterministic
    assert 2 < sum(held_out(t, split) for t in texts) < 20
    other = EvalFraction(fraction=0.25, seed=1)
    assert [held_out(t, split) for t in texts] != [held_out(t, other) for t in texts]
    path = write(tmp_path / "m.jsonl", MATH_ROWS)
    rows = load_rows("domains.m.source", "math", domain_config("m", math_domain(path, eval={"fraction": 0.25})).source)
    assert len(rows.train) + len(rows.eval) == 40 and {n for n, _ in rows.eval} == {
        i + 1 for i, t in enumerate(texts) if held_out(t, split)
    }
    write(tmp_path / "held.jsonl", MATH_ROWS[:3])
    rows = load_rows(
        "domains.m.source",
        "math",
        domain_config("m", math_domain(path, eval={"path": str(tmp_path / "held.jsonl")})).source,
    )
    assert len(rows.train) == 40 and [r["question"] for _, r in rows.eval] == texts[:3]


def test_the_cursor_goes_through_epochs_and_resumes(tmp_path):
    path = write(tmp_path / "m.jsonl", MATH_ROWS[:10])
    cfg = domain_config("m", math_domain(path, eval={"path": str(path)}))
    a = task_source("m", cfg, seed=3)
    first = [p.prompt_id for p, _ in a.next_batch(10)]
    assert sorted(first) == sorted(f"m/train/{i}" for i in range(1, 11))  # one epoch: every row once
    b = task_source("m", cfg, seed=3)
    b.load_state_dict(a.state_dict())
    assert [p.prompt_id for p, _ in a.next_batch(7)] == [p.prompt_id for p, _ in b.next_batch(7)]


def test_the_probe_split_of_a_file_is_a_seeded_sample_of_its_training_rows(tmp_path):
    path = write(tmp_path / "m.jsonl", MATH_ROWS)
    cfg = domain_config("m", math_domain(path, eval={"fraction": 0.25}))
    source = task_source("m", cfg, seed=3)
    probes = source.probe_prompts(5)
    assert len(probes) == 5 and [p.prompt_id for p in probes] == [p.prompt_id for p in source.probe_prompts(5)]
    assert all(p.prompt_id.startswith("m/train/") for p in probes)  # training rows, never held out
    assert not {p.text for p in probes} & {p.text for p in source.eval_prompts()}
    assert [p.prompt_id for p in task_source("m", cfg, seed=4).probe_prompts(5)] != [p.prompt_id for p in probes]
    assert len(source.probe_prompts(1000)) == len(source._train)  # all of them when there are fewer


def _error(tmp_path, domain: dict) -> str:
    cfg = config_from_dict({"domains": {"mine": domain}})
    with pytest.raises(DataError) as err:
        check_sources(cfg.domains)
    return str(err.value)


def test_bad_data_names_the_field_the_file_and_the_row(tmp_path):
    path = tmp_path / "m.jsonl"
    message = _error(tmp_path, math_domain(path))
    assert message.startswith("domains.mine.source.path: ") and str(path) in message and "no such file" in message
    rows = [*MATH_ROWS[:4], {"question": "What is 1 plus 1?"}]
    write(path, rows)
    message = _error(tmp_path, math_domain(path))
    assert message == (f"domains.mine.source.answer: no field 'gold' in {path} row 5 (fields: question)"), message
    write(path, MATH_ROWS[:4])
    message = _error(tmp_path, math_domain(path, prompt="problem"))
    assert message.startswith("domains.mine.source.prompt: no field 'problem'") and "row 1" in message
    write(path, [{**MATH_ROWS[0], "gold": ""}, *MATH_ROWS[1:4]])
    assert "domains.mine.source.answer: field 'gold' of" in _error(tmp_path, math_domain(path))
    path.write_text('{"question": "a", "gold": 1}\n{not json\n')
    assert f"{path} line 2: not valid JSON" in _error(tmp_path, math_domain(path))
    write(path, MATH_ROWS[:2])  # too few rows for any to be held out
    message = _error(tmp_path, math_domain(path, eval={"fraction": 0.01}))
    assert message.startswith("domains.mine.source.eval.fraction: the held-out split of") and "is empty" in message
    write(tmp_path / "empty.jsonl", [])
    message = _error(tmp_path, math_domain(path, eval={"path": str(tmp_path / "empty.jsonl")}))
    assert "the held-out split of" in message and "empty.jsonl is empty" in message
    bad_code = [{"src": "def f(x):\n    return", "tests": "assert f(1) == 1", "fn": "f"}]
    message = _error(
        tmp_path,
        {
            "kind": "code",
            "source": {"path": str(write(tmp_path / "c.json", bad_code)), "prompt": "src", "entry_point": "fn"},
        },
    )
    assert (
        message.startswith("domains.mine.source.tests: field 'tests' of") and "defines no check(candidate)" in message
    )
    (tmp_path / "m.txt").write_text("question,gold\n")
    message = _error(tmp_path, math_domain(tmp_path / "m.txt"))
    assert "unknown data file type '.txt'" in message


def test_source_and_a_suite_together_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"domains.mine.suite: 'gsm' and domains.mine.source both say"):
        config_from_dict({"domains": {"mine": {**math_domain(tmp_path / "m.jsonl"), "suite": "gsm"}}})
    with pytest.raises(ConfigError, match=r"domains.mine.source.demonstration: required, since the SFT stage"):
        config_from_dict(
            {
                "domains": {"mine": math_domain(tmp_path / "m.jsonl")},
                "schedule": {
                    "policy": {
                        "type": "stages",
                        "stages": [{"name": "s", "kind": "sft", "domains": {"mine": {"weight": 1}}}],
                    }
                },
            }
        )
    with pytest.raises(ConfigError, match=r"domains.p.source: Field required"):
        config_from_dict({"domains": {"p": {"kind": "python", "reward": {"function": "m:f"}}}})


def test_a_duplicate_key_in_the_yaml_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("domains:\n  math: {weight: 1}\n  code: {}\n  math: {weight: 2}\n")
    with pytest.raises(ConfigError, match=r"line 4: duplicate key 'math' \(first on line 2\)"):
        load_config(path)


def test_relative_paths_are_read_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "m.jsonl", MATH_ROWS)
    cfg = domain_config("m", {"kind": "math", "source": {"path": "m.jsonl", "prompt": "question", "answer": "gold"}})
    assert cfg.source.path == tmp_path / "m.jsonl"


def test_file_math_scores_like_the_synthetic_suite(tmp_path):
    path = write(tmp_path / "m.jsonl", MATH_ROWS)
    domain = build_domain("m", math_domain(path))
    prompt, _ = domain.item(MATH_ROWS[3], "m/train/4")
    scores = domain.score_group(prompt, [" 6", " 7", "The answer is 6."])
    assert [s.reward for s in scores] == [1.0, 0.0, 1.0] and scores[1].error == "wrong_answer"


def test_python_domains_carry_the_whole_row(tmp_path):
    path = write(tmp_path / "p.jsonl", MATH_ROWS)
    cfg = {"kind": "python", "source": {"path": str(path), "prompt": "question"}, "reward": {"function": "m:f"}}
    domain = build_domain("p", cfg)
    assert isinstance(domain, PluginDomain) and domain.kind == "python"
    prompt, demo = domain.item(MATH_ROWS[0], "p/train/1")
    assert prompt.reference == {"row": MATH_ROWS[0]} and demo == ""


def test_file_code_runs_the_rows_tests_in_the_sandbox(tmp_path):
    path = write(tmp_path / "code.parquet", CODE_ROWS)
    domain = build_domain(
        "funcs", {"kind": "code", "source": {"path": str(path), "prompt": "src", "entry_point": "fn"}}
    )
    prompt, _ = domain.item(CODE_ROWS[0], "funcs/train/1")
    good, wrong = domain.score_group(prompt, [" x * 2\nprint('after the function: cut')", " x + 1"])
    assert (good.reward, good.correct) == (1.0, True)
    assert (wrong.reward, wrong.correct, wrong.error) == (0.5, False, "wrong_answer")  # 1 + 1 == 2 passes
    pairs = {"src": "def inc(x):\n    return", "tests": [[[1], 2], [[5], 6]], "fn": "inc"}
    prompt, _ = domain.item(pairs, "funcs/train/2")
    assert [s.reward for s in domain.score_group(prompt, [" x + 1", " x"])] == [1.0, 0.0]

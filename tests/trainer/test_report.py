"""The run report (trainer/report.py, report_figures.py): the data it extracts from the records,
the page opened in headless Chromium, and the errors of its CLI entry. Every run folder here is
SYNTHETIC test data (report_fixture.py, or a few records written in the test)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from counterpoint.trainer.report import (
    LawPoint,
    domains_of,
    fit_law,
    law_points,
    load_run,
    overlay_series,
    report_main,
    run_labels,
    schedule_changes,
    write_report,
)

from .report_fixture import (
    BOUNDARY_STEP,
    CHANGE_STEP,
    DOMAINS,
    EVAL_STEPS,
    STAGES,
    build_synthetic_run,
    expected_law_points,
)

CHROMIUM = Path("/usr/bin/chromium")


def _write_run(path: Path, records: list, summary: dict | None = None, config: dict | None = None) -> Path:
    """A hand-written run folder; a str in `records` is written as a raw (broken) line."""
    path.mkdir(parents=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    return path


def _train(step: int, domains: dict, version: int | None = 1, stage: str | None = "joint") -> dict:
    return {"kind": "train", "step": step, "schedule": {"version": version, "stage": stage}, "domains": domains}


def _eval(step: int, domains: dict) -> dict:
    return {"kind": "eval", "step": step, "domains": domains}


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory) -> tuple[Path, Path]:
    run = build_synthetic_run(tmp_path_factory.mktemp("report"))
    return run, write_report([run])


# ------------------------------------------------------------------------------------------ data extraction


def test_law_points_match_an_independent_computation(tmp_path):
    run_dir = build_synthetic_run(tmp_path)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    run = load_run(run_dir)
    for domain in DOMAINS:
        got = [(p.step, p.entropy, p.score) for p in law_points(run, domain)]
        want = expected_law_points(records, domain)
        assert [g[0] for g in got] == [w[0] for w in want]
        assert all(math.isclose(g[1], w[1]) and math.isclose(g[2], w[2]) for g, w in zip(got, want))
    assert [p.step for p in law_points(run, "math")] == [s for s in EVAL_STEPS if s > 0]
    # creative trains only from the second stage: no entropy before the evals at 40 and 60
    assert [p.step for p in law_points(run, "creative")] == [s for s in EVAL_STEPS if s > BOUNDARY_STEP]


def test_law_points_windows_missing_entropy_and_the_reward_fallback(tmp_path):
    records = [
        _eval(0, {"m": {"accuracy": 0.1}}),
        _train(1, {"m": {"entropy_mean": 1.0}}),
        _train(2, {"m": {"entropy_mean": None}}),
        _eval(2, {"m": {"accuracy": None, "reward_mean": 0.3}}),
        _train(3, {"m": {"entropy_mean": 0.5}}),
        _train(4, {"m": {}}),
        _train(5, {"m": {"entropy_mean": 0.7}}),
        _eval(5, {"m": {"accuracy": 0.6}}),
        _eval(5, {"m": {"accuracy": 0.65}}),  # a second eval at the same step (a stage boundary): an empty window
        _eval(6, {"m": {"accuracy": 0.9}}),  # no train step in (5, 6]: no point
    ]
    run = load_run(_write_run(tmp_path / "r", records))
    assert law_points(run, "m") == [LawPoint(2, 1.0, 0.3), LawPoint(5, 0.6, 0.6)]
    assert law_points(run, "absent") == []


def test_fit_law_recovers_an_exact_law_and_refuses_too_few_points():
    a, b = 0.3, 1.1
    points = [LawPoint(s, h, b - a * math.exp(h)) for s, h in [(10, 1.2), (20, 0.8), (30, 0.5), (40, 0.2)]]
    fit = fit_law(points)
    assert fit is not None
    assert math.isclose(fit["a"], a) and math.isclose(fit["b"], b)
    assert math.isclose(fit["r2"], 1.0) and math.isclose(fit["ceiling"], b - a)
    assert fit_law(points[:1]) is None
    assert fit_law([LawPoint(1, 0.5, 0.2), LawPoint(2, 0.5, 0.4)]) is None  # one x: no line


def test_schedule_changes_are_version_or_stage_changes_between_train_records(tmp_path):
    run = load_run(build_synthetic_run(tmp_path))
    changes = schedule_changes(run)
    assert [(c.step, c.version, c.label) for c in changes] == [(CHANGE_STEP, 2, STAGES[1])]
    records = [
        _train(1, {}, None, None),  # no schedule yet
        _train(2, {}, 1, "a"),
        _train(3, {}, 1, "a"),
        _train(4, {}, 2, "a"),  # a new version, the same stage: labelled by version
        _train(5, {}, 3, "b"),
        {"kind": "train", "step": 6, "domains": {}},  # a record without a schedule is not a change
    ]
    hand = load_run(_write_run(tmp_path / "hand", records))
    assert [(c.step, c.label) for c in schedule_changes(hand)] == [(2, "a"), (4, "v2"), (5, "b")]


def test_overlaying_runs_gives_one_series_per_run_that_has_the_metric(tmp_path):
    a = load_run(build_synthetic_run(tmp_path, "run-a", seed=1))
    b = load_run(build_synthetic_run(tmp_path, "run-b", seed=2, summary=False))
    only_math = load_run(_write_run(tmp_path / "old", [_train(1, {"math": {"entropy_mean": 0.4}})]))
    runs = [a, b, only_math]
    assert run_labels(runs) == ["run-a", "run-b", "old"]
    assert run_labels([a, a]) == ["run-a", "run-a (2)"]
    assert domains_of(runs) == DOMAINS
    math_series = overlay_series(runs, "math", "entropy_mean")
    assert [(s.label, s.run_index) for s in math_series] == [("run-a", 0), ("run-b", 1), ("old", 2)]
    assert math_series[0].values != math_series[1].values and math_series[2].values == [0.4]
    creative = overlay_series(runs, "creative", "entropy_mean")
    assert [s.run_index for s in creative] == [0, 1] and creative[0].steps[0] == CHANGE_STEP
    evals = overlay_series(runs, "math", "accuracy", "eval")
    assert [s.steps for s in evals] == [EVAL_STEPS, EVAL_STEPS]


# ------------------------------------------------------------------------------------------ the page


def _sync_playwright():
    """Playwright and Chromium, or a failure that says what to install: never a silent skip."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the report's browser test needs Playwright: pip install playwright")
    if not CHROMIUM.exists():
        pytest.fail(f"the report's browser test needs Chromium at {CHROMIUM}: apt-get install chromium")
    return sync_playwright


def _figure_count(html_path: Path) -> int:
    return int(re.search(r"<body data-figures=(\d+)>", html_path.read_text()).group(1))


def test_the_report_loads_in_chromium_every_image_with_a_caption(synthetic_report):
    sync_playwright = _sync_playwright()
    run, html_path = synthetic_report
    assert html_path == run / "report" / "report.html"
    count = _figure_count(html_path)
    assert count == len(list(html_path.parent.glob("*.png")))
    text = html_path.read_text()
    assert "<script" not in text and not re.search(r"(src|href)=[\"']?(https?:|//)", text)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed request {r.url}"))
            page.goto(html_path.as_uri(), wait_until="load")
            images = page.evaluate(
                """() => [...document.images].map(i => ({
                    width: i.naturalWidth, complete: i.complete, src: i.src.slice(0, 22),
                    caption: i.closest('figure')?.querySelector('p.caption')?.textContent ?? ''}))"""
            )
        finally:
            browser.close()
    assert errors == []
    assert len(images) == count
    assert all(i["complete"] and i["width"] > 0 and i["src"] == "data:image/png;base64," for i in images)
    assert all(len(i["caption"]) > 60 and i["caption"].endswith(".") for i in images), images
    # the figures of the synthetic run: two run-level, six per domain, no pass@k for creative
    ids = re.findall(r'<figure id="fig-([^"]+)"', text)
    kinds = ["score", "entropy", "diversity", "effective-rank", "pass-at-k", "law"]
    want = ["runs-entropy-overview", "runs-transfer-1"]
    want += [f"{d}-{k}" for d in DOMAINS for k in kinds if not (d == "creative" and k == "pass-at-k")]
    assert ids == want and count == len(want)


def test_records_that_lack_most_measures_still_render(tmp_path):
    records = [
        _eval(0, {"math": {"accuracy": 0.2, "reward_mean": 0.2}, "creative": {"accuracy": None}}),
        "{not json, a line being written",
        _train(1, {"math": {"reward_mean": 0.3, "accuracy": None}, "creative": {"reward_mean": float("nan")}}),
        {"kind": "train", "step": 2, "domains": None},
        _train(3, {"math": {"reward_mean": 0.4, "distinct_2": 0.5, "effective_rank": None}}),
        _eval(3, {"math": {"accuracy": 0.5, "pass@1": 0.5, "pass@oops": 1}}),
    ]
    run = _write_run(tmp_path / "old-run", records)
    html_path = write_report([run], tmp_path / "out")
    text = html_path.read_text()
    assert _figure_count(html_path) == len(re.findall("<img ", text)) == len(list((tmp_path / "out").glob("*.png")))
    assert "No token entropy" in text and "No effective rank" in text and "No transfer matrix" in text
    assert "no summary.json" in text
    assert 'id="fig-math-score"' in text and 'id="fig-math-diversity"' in text and 'id="fig-math-pass-at-k"' in text


def _small_run(path: Path, run_id: str, shift: float) -> Path:
    """Ten steps of one domain, two stages, two evals, a transfer matrix: quick to draw."""
    records = [_eval(0, {"math": {"accuracy": 0.1, "pass@1": 0.1, "pass@4": 0.3}})]
    for s in range(1, 11):
        m = {"accuracy": 0.1 + 0.04 * s + shift, "reward_mean": 0.1 + 0.04 * s, "entropy_mean": 1.0 - 0.06 * s}
        records.append(_train(s, {"math": m}, 1 if s <= 5 else 2, "a" if s <= 5 else "b"))
    records.append(_eval(10, {"math": {"accuracy": 0.5 + shift, "pass@1": 0.5, "pass@4": 0.6}}))
    transfer = {"stages": ["initial", "a", "b"], "domains": ["math"], "R": [[0.1], [0.3 + shift], [0.5]],
                "bwt": {"math": None}, "fwt": {"math": 0.2}, "bwt_mean": None, "fwt_mean": 0.2}  # fmt: skip
    return _write_run(path / run_id, records, summary={"run_id": run_id, "transfer": transfer})


def test_report_main_compares_two_runs_into_the_folder_given(tmp_path, capsys):
    a, b = _small_run(tmp_path, "run-a", 0.0), _small_run(tmp_path, "run-b", 0.1)
    out = tmp_path / "compare"
    assert report_main([str(a), str(b), "--out", str(out)]) == 0
    assert str(out / "report.html") in capsys.readouterr().out
    text = (out / "report.html").read_text()
    assert "Counterpoint report — run-a, run-b" in text and text.count("Transfer between stages") == 2
    ids = re.findall(r'<figure id="fig-([^"]+)"', text)
    assert ids == ["runs-entropy-overview", "runs-transfer-1", "runs-transfer-2", "math-score", "math-entropy",
                   "math-pass-at-k", "math-law"]  # fmt: skip
    assert _figure_count(out / "report.html") == len(ids) == len(list(out.glob("*.png")))
    assert not (a / "report").exists()


def test_report_main_names_a_folder_without_metrics_and_exits_2(tmp_path, capsys):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    assert report_main([str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "no metrics.jsonl" in err
    good = _write_run(tmp_path / "good", [_train(1, {"math": {"reward_mean": 0.1}})])
    missing = tmp_path / "typo"
    assert report_main([str(good), str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "no such folder" in err
    assert not (tmp_path / "out").exists()  # nothing written when any folder is bad
    assert report_main([]) == 2  # usage: argparse's message, as a return code

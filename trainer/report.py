"""The run report: one self-contained HTML page (figures as base64 PNG, inline CSS, no scripts,
nothing fetched), the same figures as PNG files beside it; one run, or several on the same axes.
`write_report([run_dir, ...], out_dir)`; `report_main(argv)` is `counterpoint report`.

It reads the run folder (metrics.jsonl, summary.json, config.json) and tolerates a run still going
and older records that lack measures: what is missing is not drawn, and the page says so. Here: the
data extraction (pure) and the page; report_figures.py draws (matplotlib, imported on writing).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from counterpoint.trainer import analysis


class ReportError(Exception):
    """A folder that cannot be reported on (no metrics.jsonl); the message names the folder."""


@dataclass
class RunData:
    path: Path
    run_id: str
    train: list[dict]  # sorted by step; where a step appears twice (a resume), the last one
    evals: list[dict]  # sorted by step, every one (a stage-boundary eval may share a step with another)
    summary: dict  # {} for a run still going
    config: dict

    @property
    def group_size(self) -> int | None:
        g = (self.config.get("generation") or {}).get("samples_per_prompt")
        return g if isinstance(g, int) and g > 0 else None

    @property
    def last_step(self) -> int | None:
        return self.train[-1]["step"] if self.train else None


@dataclass(frozen=True)
class Series:
    label: str  # the run id, made unique among the runs compared
    run_index: int
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class ScheduleChange:
    step: int  # the first train step under the new schedule
    version: int | None
    stage: str | None
    label: str  # the stage when it changed, else "v<version>"


@dataclass(frozen=True)
class LawPoint:
    step: int  # the evaluation's
    entropy: float  # mean train token entropy of the domain over steps in (previous eval step, step]
    score: float  # the evaluation's accuracy, or its reward_mean when accuracy is None


def finite(v) -> float | None:
    """A finite number, else None (bools, strings, NaN and missing values are not plotted)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _by_step(records: list[dict]) -> list[dict]:
    last: dict[int, dict] = {}
    for r in records:
        last[r["step"]] = r
    return [last[s] for s in sorted(last)]


def load_run(path: Path) -> RunData:
    """Read a run folder. Lines that are not JSON records with an integer step (a line being
    written while the run goes on) are skipped."""
    path = Path(path)
    metrics = path / "metrics.jsonl"
    if not metrics.is_file():
        reason = "no metrics.jsonl in this folder" if path.is_dir() else "no such folder"
        raise ReportError(f"{path}: {reason} (a run folder, runs/<run_id>, holds metrics.jsonl)")
    records = []
    for line in metrics.read_text(errors="replace").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and isinstance(r.get("step"), int):
            records.append(r if isinstance(r.get("domains"), dict) else {**r, "domains": {}})
    summary = _read_json(path / "summary.json")
    run_id = summary.get("run_id") if isinstance(summary.get("run_id"), str) else path.resolve().name
    train = _by_step([r for r in records if r.get("kind") == "train"])  # a resumed step: its last record
    evals = sorted((r for r in records if r.get("kind") == "eval"), key=lambda r: r["step"])  # all, as analysis.py
    return RunData(path, run_id, train, evals, summary, _read_json(path / "config.json"))


def _domain(record: dict, domain: str) -> dict:
    d = (record.get("domains") or {}).get(domain)
    return d if isinstance(d, dict) else {}


def run_labels(runs: list[RunData]) -> list[str]:
    """Run ids, made unique ("id (2)") where the same run is compared twice."""
    labels: list[str] = []
    for r in runs:
        label, n = r.run_id, 1
        while label in labels:
            n += 1
            label = f"{r.run_id} ({n})"
        labels.append(label)
    return labels


def domains_of(runs: list[RunData]) -> list[str]:
    """Every domain of the runs: in the order of the first run's config, then as first seen."""
    seen: list[str] = []
    for run in runs:
        configured = run.config.get("domains")
        for name in list(configured) if isinstance(configured, dict) else []:
            if name not in seen and any(_domain(r, name) for r in run.train + run.evals):
                seen.append(name)
        for r in run.train + run.evals:
            seen.extend(d for d in r.get("domains") or {} if d not in seen)
    return seen


def _series(records: list[dict], domain: str, key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for r in records:
        v = finite(_domain(r, domain).get(key))
        if v is not None:
            steps.append(r["step"])
            values.append(v)
    return steps, values


def series(run: RunData, domain: str, key: str, kind: str = "train") -> tuple[list[int], list[float]]:
    """(steps, values) of one per-domain metric of the train (or "eval") records, where it is a number."""
    return _series(run.train if kind == "train" else run.evals, domain, key)


def overlay_series(runs: list[RunData], domain: str, key: str, kind: str = "train") -> list[Series]:
    """One series per run that has the metric, to draw on the same axes (colour = run_index)."""
    out = []
    for i, (run, label) in enumerate(zip(runs, run_labels(runs))):
        steps, values = series(run, domain, key, kind)
        if steps:
            out.append(Series(label, i, steps, values))
    return out


def score_key(runs: list[RunData], domain: str) -> str:
    """ "accuracy" where any record of the domain has one (math, code), else "reward_mean"."""
    for run in runs:
        if any(finite(_domain(r, domain).get("accuracy")) is not None for r in run.evals + run.train):
            return "accuracy"
    return "reward_mean"


def schedule_changes(run: RunData) -> list[ScheduleChange]:
    """Where `schedule.version` (or its stage) differs from the previous train record's."""
    out, prev = [], None
    for r in run.train:
        s = r.get("schedule") if isinstance(r.get("schedule"), dict) else {}
        now = (s.get("version"), s.get("stage"))
        if prev is not None and now != prev and now != (None, None):
            stage = now[1] if isinstance(now[1], str) else None
            label = stage if stage is not None and stage != prev[1] else f"v{now[0]}"
            out.append(ScheduleChange(r["step"], now[0], stage, label))
        prev = now
    return out


def law_points(run: RunData, domain: str) -> list[LawPoint]:
    """The entropy–performance law's points (`trainer.analysis.law_points`): for each eval at step
    s > 0 with a score, the mean train entropy_mean of the domain over steps in (previous eval, s]."""
    return [LawPoint(s, h, r) for s, h, r in analysis.law_points([*run.train, *run.evals], domain)]


def fit_law(points: list[LawPoint]) -> dict | None:
    """`trainer.analysis.fit_entropy_law` of the points: {"a", "b", "r2", "ceiling" (b − a, the
    score at H = 0), ...}; None under two distinct x."""
    if len(points) < 2:
        return None
    return analysis.fit_entropy_law([p.entropy for p in points], [p.score for p in points])


def law_of(run: RunData, domain: str) -> tuple[dict | None, str]:
    """The law's fit and where it came from: summary.json's ("summary"), else fitted here from
    the records ("report"), else (None, "")."""
    law = (run.summary.get("entropy_law") or {}).get(domain) if isinstance(run.summary, dict) else None
    if isinstance(law, dict) and finite(law.get("a")) is not None and finite(law.get("b")) is not None:
        law = dict(law)
        if finite(law.get("ceiling")) is None:
            law["ceiling"] = law["b"] - law["a"]
        return law, "summary"
    fit = fit_law(law_points(run, domain))
    return (fit, "report") if fit is not None else (None, "")


def pass_at_k(record: dict, domain: str) -> list[tuple[int, float]]:
    """[(k, pass@k)] of one eval record's domain, sorted by k."""
    out = []
    for key, v in _domain(record, domain).items():
        if key.startswith("pass@") and key[5:].isdigit() and finite(v) is not None:
            out.append((int(key[5:]), float(v)))
    return sorted(out)


# ---------------------------------------------------------------------------------------------- the page

_CSS = """body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1320px;padding:0 24px 48px;color:#222;
line-height:1.45}h1{font-size:1.6em;margin:24px 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;
margin-top:40px}h3{margin:24px 0 8px;font-size:1.1em}nav a{margin-right:14px}.figs{display:flex;flex-wrap:wrap;gap:20px}
figure{margin:0;flex:1 1 560px;max-width:100%}figure.wide{flex-basis:100%}
figure img{max-width:100%;height:auto;display:block;border:1px solid #eee}
p.caption{font-size:.92em;color:#444;margin:6px 2px 0;max-width:1100px}p.missing{color:#777;font-style:italic}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.92em}th,td{border:1px solid #ddd;padding:4px 10px;
text-align:right;white-space:nowrap}.scroll{overflow-x:auto}th{background:#f4f4f4}td.l,th.l{text-align:left}
code{background:#f4f4f4;padding:0 3px}footer{margin-top:40px;color:#777;font-size:.85em}"""


def _e(v) -> str:
    return html.escape(str(v))


def _fmt(v, digits: int = 3) -> str:
    v = finite(v)
    return "—" if v is None else f"{v:.{digits}f}"


def _figure_html(fig) -> str:
    src = "data:image/png;base64," + base64.b64encode(fig.png).decode("ascii")
    return (
        f'<figure id="fig-{_e(fig.name)}"{" class=wide" if fig.wide else ""}><img src="{src}" alt="{_e(fig.title)}" '
        f'width="{fig.width}" height="{fig.height}"><p class="caption">{_e(fig.caption)}</p></figure>'
    )


_HEAD = "".join(f"<th{' class=l' if h in ('run', 'domain', 'eval score') else ''}>{h}</th>" for h in (
    "run", "steps", "domain", "eval score", "first → last eval", "at steps", "change", "law a", "law b", "law R²",
    "ceiling b−a", "holdout MAE"))  # fmt: skip


def _summary_table(runs: list[RunData], labels: list[str], domains: list[str]) -> str:
    rows, fitted_here = [], False
    for run, label in zip(runs, labels):
        present = [d for d in domains if any(_domain(r, d) for r in run.train + run.evals)]
        for i, d in enumerate(present):
            key = score_key([run], d)
            steps, values = series(run, d, key, "eval")
            ends = [f"{values[0]:.3f} → {values[-1]:.3f}", f"{steps[0]} → {steps[-1]}"] if steps else ["—", "—"]
            ends.append(f"{values[-1] - values[0]:+.3f}" if len(steps) > 1 else "—")
            law, source = law_of(run, d)
            law, mark = law or {}, "*" if source == "report" else ""
            fitted_here |= source == "report"
            hold = law.get("holdout") if isinstance(law.get("holdout"), dict) else {}
            ceiling = _fmt(law.get("ceiling")) if (finite(law.get("a")) or 0) > 0 else "— (a ≤ 0)"
            cells = [d, key, *ends] + [_fmt(law.get(k)) + mark for k in ("a", "b", "r2")] + [ceiling + mark]
            cells.append(_fmt(hold.get("mean_abs_error")))
            n = len(present)
            lead = f"<td class=l rowspan={n}>{_e(label)}</td><td rowspan={n}>{_e(run.last_step or '—')}</td>"
            tds = "".join(f"<td{' class=l' if j < 2 else ''}>{_e(c)}</td>" for j, c in enumerate(cells))
            rows.append(f"<tr>{lead if i == 0 else ''}{tds}</tr>")
    note = "<p class=missing>* fitted by this report from the records (no entropy_law in summary.json).</p>"
    return f"<div class=scroll><table><tr>{_HEAD}</tr>{''.join(rows)}</table></div>{note if fitted_here else ''}"


def _transfer_table(run: RunData, label: str) -> str:
    t = run.summary.get("transfer")
    if not isinstance(t, dict) or not isinstance(t.get("domains"), list):
        return ""
    bwt, fwt = t.get("bwt") or {}, t.get("fwt") or {}
    rows = "".join(f"<tr><td class=l>{_e(d)}</td><td>{_fmt(bwt.get(d))}</td><td>{_fmt(fwt.get(d))}</td></tr>"
                   for d in t["domains"])  # fmt: skip
    rows += f"<tr><th class=l>mean</th><th>{_fmt(t.get('bwt_mean'))}</th><th>{_fmt(t.get('fwt_mean'))}</th></tr>"
    return (
        f"<h3>Transfer between stages — {_e(label)}</h3><table><tr><th class=l>domain</th><th>BWT (backward "
        f"transfer)</th><th>FWT (forward transfer)</th></tr>{rows}</table><p class=missing>BWT &lt; 0: later "
        "stages eroded what a domain's own stage taught; FWT &gt; 0: earlier stages helped a domain before its own "
        "stage trained.</p>"
    )


def _page(runs: list[RunData], figures: list, missing: dict[str, list[str]], out_dir: Path) -> str:
    labels, domains = run_labels(runs), domains_of(runs)

    def figs(section: str) -> str:
        return "<div class=figs>" + "".join(_figure_html(f) for f in figures if f.section == section) + "</div>"

    items = "".join(
        f"<li><b>{_e(label)}</b> — <code>{_e(run.path)}</code>, {len(run.train)} train steps, {len(run.evals)} "
        f"evaluations{'' if run.summary else ' (no summary.json: still running, or stopped)'}</li>"
        for run, label in zip(runs, labels)
    )
    parts = [f"<section id=runs><h2>Runs</h2><ul>{items}</ul><h3>Summary</h3>", _summary_table(runs, labels, domains)]
    parts += [figs("runs"), *(_transfer_table(run, label) for run, label in zip(runs, labels))]
    if not any(isinstance(r.summary.get("transfer"), dict) for r in runs):
        parts.append("<p class=missing>No transfer matrix: no run's summary.json has one (a run without stages, "
                     "or one still going).</p>")  # fmt: skip
    for d in domains:
        notes = "".join(f"<p class=missing>{_e(n)}</p>" for n in missing.get(d, []))
        parts.append(f"</section><section id='domain-{_e(d)}'><h2>{_e(d)}</h2>{figs(d)}{notes}")
    title = "Counterpoint report — " + ", ".join(labels)
    nav = "<a href='#runs'>runs</a>" + "".join(f"<a href='#domain-{_e(d)}'>{_e(d)}</a>" for d in domains)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title><meta name=viewport "
        f"content='width=device-width,initial-scale=1'><link rel=icon href='data:,'><style>{_CSS}</style></head>"
        f"<body data-figures={len(figures)}><h1>{_e(title)}</h1><nav>{nav}</nav>{''.join(parts)}</section>"
        f"<footer>{len(figures)} figures, also written as PNG files to <code>{_e(out_dir)}</code>; generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</footer></body></html>\n"
    )


def write_report(run_dirs: list[Path], out_dir: Path | None = None) -> Path:
    """Write `<out_dir>/report.html` (default out_dir: `<first run>/report/`) and each figure as a
    PNG beside it; return the HTML file's path. Raises ReportError for a folder without
    metrics.jsonl, before writing anything."""
    return _write(run_dirs, out_dir)[0]


def _write(run_dirs: list[Path], out_dir: Path | None) -> tuple[Path, int]:
    """write_report, and how many figures it wrote."""
    if not run_dirs:
        raise ReportError("no run folder given")
    runs = [load_run(Path(p)) for p in run_dirs]
    from counterpoint.trainer.report_figures import build_figures

    figures, missing = build_figures(runs)
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dirs[0]) / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in figures:
        (out_dir / f"{f.name}.png").write_bytes(f.png)
    target = out_dir / "report.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(_page(runs, figures, missing, out_dir), encoding="utf-8")
    tmp.replace(target)
    return target, len(figures)


def report_main(argv: list[str] | None = None) -> int:
    """`counterpoint report RUN_DIR [RUN_DIR ...] [--out DIR]`: 0 written, 2 a bad folder or usage."""
    parser = argparse.ArgumentParser(
        prog="counterpoint report",
        description="Write an HTML report (figures embedded, PNG copies beside it) of one run or several "
        "compared on the same axes.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders (runs/<run_id>), each with metrics.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <first run>/report)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # usage errors (2) and --help (0), as a return code
        return int(stop.code or 0)
    try:  # load_run checks every folder before anything is written
        path, n = _write(args.run_dirs, args.out)
    except ReportError as err:
        print(f"counterpoint report: error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path} ({n} figures, also as PNG files beside it)")
    return 0

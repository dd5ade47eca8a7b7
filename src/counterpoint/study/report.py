"""The study report: per condition the mean and 95% interval over seeds of the final figures,
curves with bands, what each condition changes, and the verdict on every claim.

<study folder>/report/
  summary.md      markdown for docs/results/ (tables, verdicts, the PNGs by relative path)
  summary.json    the same numbers as data
  report.html     one self-contained page (the PNGs inlined)
  *.png           the curves
"""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from pathlib import Path

from counterpoint.study.results import RunResult, band, interval, metrics_of, values
from counterpoint.study.runner import RunKey, StudyFolder
from counterpoint.study.spec import PICKED, StudyError, StudySpec, differences
from counterpoint.study.verdicts import FAILED, HELD, judge_claims

HEADLINE = (
    "math.accuracy",
    "math.pass@k",
    "code.accuracy",
    "code.pass@k",
    "creative.reward",
    "creative.distinct_2",
    "creative.semantic_diversity",
    "math.entropy",
    "code.entropy",
    "creative.entropy",
)
"""The columns of the main table, when measured (the full table has every metric)."""
TRANSFER = ("bwt", "math.bwt", "code.bwt", "creative.bwt", "fwt", "math.law_error", "code.law_error")
"""The columns of the forgetting-and-law table (staged runs' BWT/FWT, the law's held-out error)."""
CURVE_PANELS = (
    ("entropy_mean", "entropy_mean", "token entropy (training samples)", False),
    ("reward_mean", "reward_mean", "reward (training samples)", False),
    ("distinct_2", "distinct_2", "distinct-2 (training groups)", False),
    ("eval", None, "held-out accuracy (math, code) and reward (creative)", True),
    ("eval_distinct_2", "distinct_2", "held-out distinct-2 (4 samples a prompt)", True),
)
SMOOTH = 5
COLOURS = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
    "#393b79",
    "#ad494a",
    "#637939",
    "#8c6d31",
]


def _smooth(points: list[tuple[int, float]], k: int = SMOOTH) -> list[tuple[int, float]]:
    h = k // 2
    vals = [v for _, v in points]
    return [(s, statistics.fmean(vals[max(0, i - h) : i + h + 1])) for i, (s, _) in enumerate(points)]


def _smoothed(runs: list[RunResult]) -> list[RunResult]:
    out = []
    for r in runs:
        c = RunResult(r.condition, r.seed, r.path)
        c.curves = {d: {k: _smooth(p) for k, p in m.items()} for d, m in r.curves.items()}
        c.eval_curves = r.eval_curves
        out.append(c)
    return out


def figures(spec: StudySpec, runs: dict[str, list[RunResult]]) -> list[tuple[str, str, bytes]]:
    """(file name, caption, PNG) per figure: each measure per domain, one line per condition (the
    mean over seeds) in a band (the 95% interval per step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    domains = sorted(
        {d for rs in runs.values() for r in rs for d in (*r.curves, *r.eval_curves)},
        key=lambda d: ("math", "code", "creative").index(d) if d in ("math", "code", "creative") else 9,
    )
    out = []
    for fname, key, title, is_eval in CURVE_PANELS:
        fig, axes = plt.subplots(1, len(domains), figsize=(4.6 * len(domains), 3.4), squeeze=False)
        for ax, domain in zip(axes[0], domains):
            for i, cond in enumerate(c for c in spec.ordered() if c in runs):
                curve_key = key or ("reward" if domain == "creative" else "accuracy")
                pts = band(runs[cond] if is_eval else _smoothed(runs[cond]), domain, curve_key, eval_curve=is_eval)
                if not pts:
                    continue
                xs = [s for s, _ in pts]
                colour = COLOURS[i % len(COLOURS)]
                ax.plot(
                    xs,
                    [iv.mean for _, iv in pts],
                    color=colour,
                    lw=1.4,
                    label=cond,
                    marker="o" if is_eval else None,
                    ms=3,
                )
                if all(iv.half is not None for _, iv in pts):
                    ax.fill_between(
                        xs, [iv.low for _, iv in pts], [iv.high for _, iv in pts], color=colour, alpha=0.15, lw=0
                    )
            ax.set_title(
                f"{domain}: {key or ('reward' if domain == 'creative' else 'accuracy')}{' (eval)' if is_eval else ''}",
                fontsize=10,
            )
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        handles = {}
        for ax in axes[0]:
            for h, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, h)
        fig.tight_layout(rect=(0, 0, 0.86 if handles else 1, 1))
        if handles:
            fig.legend(list(handles.values()), list(handles), fontsize=7, loc="center right")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        caption = (
            f"{title}, per domain: one line per condition, the mean over its seeds"
            f"{'' if is_eval else f' (each run smoothed over {SMOOTH} steps)'}, the band its 95% interval per step "
            "(no band with one seed). A domain a condition does not train has no training curve."
        )
        out.append((f"{fname}.png", caption, buf.getvalue()))
    return out


def build(folder: StudyFolder, spec: StudySpec, runs: dict[str, list[RunResult]]) -> dict:
    """The study's numbers (`runs`: its finished runs' figures): per condition and metric the end
    and change intervals, the verdicts."""
    if not runs:
        raise StudyError(f"{folder.path}: no run of the study has finished yet")
    best = folder.best()
    chosen = {c: b["picked"] for c, b in best.items()}
    status = folder.status()
    all_runs = [r for rs in runs.values() for r in rs]
    metrics = metrics_of(all_runs)
    table = {}
    for cond in spec.ordered():
        rs = runs.get(cond, [])
        row = {"runs": len(rs), "of": len(spec.seeds), "description": spec.conditions[cond].description}
        for m in metrics:
            end, change = interval(list(values(rs, m).values())), interval(list(values(rs, m, "change").values()))
            row[m] = {"end": _iv(end), "change": _iv(change)}
        table[cond] = row
    judged = {**runs, **{f"{c}{PICKED}": runs.get(b["picked"], []) for c, b in best.items()}}
    verdicts = [{"claim": c.claim, "source": c.source, **_verdict(v)} for c, v in judge_claims(spec.claims, judged)]
    seconds = [st.get("seconds") for st in status.values() if st.get("state") == "done" and st.get("seconds")]
    return {
        "study": spec.name,
        "description": spec.description,
        "steps": spec.steps,
        "seeds": spec.seeds,
        "conditions": table,
        "differences": differences(spec, chosen),
        "best_of": best,
        "verdicts": verdicts,
        "metrics": metrics,
        "run_seconds": round(sum(seconds), 1),
        "failed": sorted(k for k, st in status.items() if st.get("state") == "failed"),
        "pending": [
            RunKey(c, s).label for c in spec.ordered() for s in spec.seeds if folder.state(RunKey(c, s)) != "done"
        ],
    }


def _iv(iv) -> dict | None:
    return None if iv is None else {"mean": iv.mean, "half": iv.half, "n": iv.n, "values": iv.values}


def _verdict(v) -> dict:
    return {"outcome": v.outcome, "evidence": v.evidence, "parts": [_verdict(p) for p in v.parts]}


def _cell(d: dict | None, signed: bool = False) -> str:
    if not d:
        return "—"
    return f"{d['mean']:{'+' if signed else ''}.3f}" + ("" if d["half"] is None else f" ± {d['half']:.3f}")


def _evidence_lines(v: dict, depth: int = 0) -> list[str]:
    out = []
    for p in v["parts"]:
        out.append(f"{'  ' * depth}- {p['outcome']}: {p['evidence']}")
        out.extend(_evidence_lines(p, depth + 1))
    return out


def _table(data: dict, metrics: list[str], where: str) -> list[str]:
    """A markdown table, a row per condition: each metric's `end` or `change` interval."""
    rows = [
        f"| {cond} | " + " | ".join(_cell(row[m][where], signed=where == "change") for m in metrics) + " |"
        for cond, row in data["conditions"].items()
    ]
    return ["| condition | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics), *rows]


def markdown(data: dict, figs: list[tuple[str, str, bytes]]) -> str:
    cols = [m for m in HEADLINE if m in data["metrics"]]
    lines = [
        f"# Study `{data['study']}`",
        "",
        data["description"].strip(),
        "",
        f"{data['steps']} steps, seeds {', '.join(map(str, data['seeds']))}; run time summed over runs "
        f"{data['run_seconds'] / 60:.1f} min. Each cell is the mean over seeds ± the half-width of its 95% "
        "t-interval (n=1: one seed, no interval). Held-out figures are the last evaluation's; entropy is the "
        "mean of the last 5 training steps in which the domain trained.",
        "",
    ]
    if data["pending"]:
        lines += [f"**Not finished:** {', '.join(data['pending'])}.", ""]
    lines += [
        "## Final figures",
        "",
        "| condition | runs | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for cond, row in data["conditions"].items():
        lines.append(f"| {cond} | {row['runs']}/{row['of']} | " + " | ".join(_cell(row[m]["end"]) for m in cols) + " |")
    lines += ["", "Change over the run (end − start, per seed, then the interval):", "", *_table(data, cols, "change")]
    later = [m for m in TRANSFER if m in data["metrics"]]
    if later:
        lines += [
            "",
            "Forgetting, transfer and the entropy-performance law, at the end: `bwt` (a staged run: each domain's "
            "final score minus its score when the last stage training it ended, mean over domains; below 0 is "
            "forgetting), `fwt` (what earlier stages gave a domain before its own), and `law_error` (the law's mean "
            "absolute error on the evaluations its fit did not see; docs/metrics.md):",
            "",
            *_table(data, later, "end"),
        ]
    lines += ["", "## Verdicts", "", "| claim | verdict | the numbers |", "|---|---|---|"]
    for v in data["verdicts"]:
        mark = {HELD: "**held**", FAILED: "**did not hold**"}.get(v["outcome"], "inconclusive")
        lines.append(f"| {v['claim']} | {mark} | {v['evidence']} |")
    for v in data["verdicts"]:
        if v["parts"]:
            lines += ["", f"*{v['claim']}*:", *_evidence_lines(v)]
    lines += [
        "",
        "## What each condition changes",
        "",
        "Resolved config fields that differ from the first condition's (everything else is equal):",
        "",
    ]
    for cond, diff in data["differences"].items():
        desc = data["conditions"][cond]["description"]
        changed = "; ".join(f"`{k}` = {json.dumps(v)}" for k, v in diff.items()) or "(the reference)"
        lines.append(f"- **{cond}**{': ' + desc if desc else ''}. {changed}")
    for cond, best in data["best_of"].items():
        lines.append(f"- **{cond}** took the overrides of **{best['picked']}**: {best['reason']}.")
    lines += ["", "## Curves", ""]
    for name, caption, _ in figs:
        lines += [f"![{name}]({name})", "", caption, ""]
    lines += ["## Every metric", "", "| condition | metric | end | change |", "|---|---|---|---|"]
    for cond, row in data["conditions"].items():
        for m in data["metrics"]:
            if row[m]["end"]:
                lines.append(f"| {cond} | {m} | {_cell(row[m]['end'])} | {_cell(row[m]['change'], signed=True)} |")
    if data["failed"]:
        lines += ["", f"Failed runs (their logs are next to their folders): {', '.join(data['failed'])}."]
    return "\n".join(lines) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1400px;margin:0 auto;padding:0 24px 48px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}th,td{border:1px solid #ddd;padding:3px 8px;"
    "text-align:left;vertical-align:top}th{background:#f4f4f4}img{max-width:100%;border:1px solid #eee}"
    "p.caption{color:#444;font-size:.92em}.held{color:#1a7f37;font-weight:600}.failed{color:#b42318;font-weight:600}"
)


def html_page(md: str, figs: list[tuple[str, str, bytes]]) -> str:
    """The markdown rendered to a self-contained page (tables, lists, headings; PNGs inlined)."""
    images = {name: base64.b64encode(png).decode("ascii") for name, _, png in figs}
    body, table = [], []

    def flush():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
            body.append(f"<table><tr>{head}</tr>{rest}</table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("!["):
            name = line[line.index("(") + 1 : line.rindex(")")]
            body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{images[name]}">')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.lstrip().startswith("- "):
            indent = (len(line) - len(line.lstrip())) * 12
            body.append(f'<div style="margin-left:{indent}px">• {_inline(line.lstrip()[2:])}</div>')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    head = f"<meta charset=utf-8><title>study</title><style>{_CSS}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>"


def _inline(text: str) -> str:
    out = html.escape(text)
    for mark, tag in (("**", "b"), ("`", "code"), ("*", "i")):
        parts = out.split(mark)
        out = (
            "".join(p if i % 2 == 0 else f"<{tag}>{p}</{tag}>" for i, p in enumerate(parts)) if len(parts) % 2 else out
        )
    return out.replace("<b>held</b>", '<span class="held">held</span>').replace(
        "<b>did not hold</b>", '<span class="failed">did not hold</span>'
    )


def write_study_report(path: Path) -> Path:
    """Write <study>/report/ from the runs finished so far; returns the HTML page's path."""
    folder = StudyFolder(path)
    if not (path / "study.json").exists():
        raise StudyError(f"{path} is not a study folder (no study.json)")
    spec = folder.spec()
    runs = folder.results(spec)  # every run folder read once, for the numbers and the figures
    data = build(folder, spec, runs)
    figs = figures(spec, runs)
    out = path / "report"
    out.mkdir(exist_ok=True)
    for name, _, png in figs:
        (out / name).write_bytes(png)
    md = markdown(data, figs)
    (out / "summary.md").write_text(md)
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    page = out / "report.html"
    page.write_text(html_page(md, figs))
    return page

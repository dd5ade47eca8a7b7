"""The report's figures: matplotlib's object API on the Agg canvas (no pyplot, so no global figure
registry to leak into and no backend switched under a caller), a fixed dpi, one PNG each.

Colour is the run (runs compared overlay on the same axes); within a panel of several measures,
shades of the run's colour tell them apart (light: the first, e.g. distinct-1), and a dashed line
is the measure's "effective" variant. Dashed verticals mark schedule changes on every step axis.
Margins are fixed in inches rather than left to constrained layout, which doubles the drawing time.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

from matplotlib import colormaps, rc_context
from matplotlib import colors as mcolors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from counterpoint.trainer import report as rp

DPI = 100
SMOOTH = 5
"""Points in the centred moving average of the train curves."""
RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
RUN_STYLES = ["-", "--", ":", "-."]
# A fixed title position (axes.titley): matplotlib's automatic one measures every tick label.
_RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 7.5, "axes.grid": True,
       "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "axes.titley": 1.02}  # fmt: skip
_STAGE_TEXT = {"va": "top", "ha": "left", "fontsize": 7, "bbox": {"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1}}
# (title, metrics, y label); each metric also drawn dashed as "effective_<metric>" where logged.
DIVERSITY_PANELS = [
    ("distinct-n", [f"distinct_{n}" for n in range(1, 5)], "fraction of distinct n-grams"),
    ("expectation-adjusted distinct (EAD)", [f"ead_{n}" for n in range(1, 5)], "EAD (length-adjusted distinct-n)"),
    ("self-similarity (higher: less diverse)", ["self_bleu", "self_chrf"], "mean pairwise similarity (0–1)"),
    ("semantic diversity", ["semantic_diversity"], "mean pairwise cosine distance"),
    ("Vendi score", ["vendi"], "effective number of distinct samples"),
    ("distinct samples (counts)", ["unique_trajectories", "functional_classes", "ast_shapes"], "distinct samples per"),
]
_NAMES = {"unique_trajectories": "unique trajectories", "functional_classes": "functional classes (code)",
          "ast_shapes": "AST shapes (code)", "self_bleu": "self-BLEU", "self_chrf": "self-chrF"}  # fmt: skip
MISSING = {
    "score": "No reward or accuracy in the records of this domain.",
    "entropy": "No token entropy (entropy_mean) in the train records.",
    "diversity": "No diversity measures (distinct-n, self-BLEU, Vendi…) in the train records: an older run.",
    "effective_rank": "No effective rank in the train records (metrics.effective_rank_every_steps 0, or older).",
    "pass_at_k": "No pass@k at evaluation (logged for math and code evaluations).",
    "law": "No entropy–performance law: it needs an evaluation after step 0 with train entropy before it.",
}
# One sentence under each figure: what it shows and how to read it ({d}: the domain).
CAPTIONS = {
    "score": "The {d} domain's {what} per training step (faint: each step's rollouts; solid: {sm}-step moving "
    "average) with evaluations as dots{note}; higher is better{sched}.",
    "entropy": "Mean per-token entropy of the policy on its {d} training samples, in nats (faint: per step; solid: "
    "{sm}-step moving average): a fall toward 0 is entropy collapse, the policy sampling ever fewer "
    "alternatives{sched}.",
    "diversity": "How different the samples of one {d} prompt are from each other, per training step ({sm}-step moving "
    "average): higher distinct-n, EAD, semantic distance, Vendi and distinct-sample counts mean more diverse, higher "
    "self-BLEU/chrF means the samples share more n-grams (less diverse), and dashed lines count only the samples "
    "that passed the quality check.",
    "effective_rank": "Effective rank of the last-layer hidden states of {d} responses (exp of the entropy of their "
    "normalised singular values), logged every few steps: a falling rank means the responses use fewer directions "
    "of the representation{sched}.",
    "pass_at_k": "pass@k: the fraction of {d} prompts that at least one of k samples solves, one line per evaluation "
    "(darker: later); a later line that rises at k = 1 but not at the largest k means training sharpened the first "
    "answer more than it widened what the policy can solve.",
    "law": "Each point is one {d} evaluation (labelled by step): its score against exp(H), H the mean training token "
    "entropy since the previous evaluation; {fit}{note}.",
    "entropy_overview": "Mean token entropy of each domain's training samples on one axis ({sm}-step moving average, "
    "nats){note}: the domain whose curve falls first and furthest is the one collapsing{sched}.",
    "transfer": "Transfer matrix R: row j holds each domain's evaluation score (column) after training through stage "
    "j, the first row before any training, grey where not measured; read down a column to see a domain gain in its "
    "own stage and whether later stages kept it (BWT) or earlier ones had helped it (FWT).",
}


@dataclass
class ReportFigure:
    name: str  # the file stem of its PNG, and the id of its <figure>
    section: str  # "runs" or a domain
    kind: str
    title: str
    caption: str
    png: bytes
    width: int
    height: int
    wide: bool = False


def smooth(values: list[float], k: int = SMOOTH) -> list[float]:
    """Centred moving average over k points (over fewer at the ends)."""
    h = k // 2
    return [sum(values[max(0, i - h) : i + h + 1]) / len(values[max(0, i - h) : i + h + 1]) for i in range(len(values))]


def _colour(i: int) -> str:
    return RUN_COLOURS[i % len(RUN_COLOURS)]


def _shade(colour, i: int, n: int):
    """The i-th of n measures of a panel: light (i = 0) to the full colour (i = n − 1)."""
    t = 0.62 * (1 - i / (n - 1)) if n > 1 else 0.0
    return tuple(c + (1 - c) * t for c in mcolors.to_rgb(colour))


def _label(key: str) -> str:
    return _NAMES.get(key) or key.replace("distinct_", "distinct-").replace("ead_", "EAD-").replace("_", " ")


def _count(v) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else len(v) if isinstance(v, list) else 0


def _line(colour, label: str, **kw) -> Line2D:
    return Line2D([], [], color=colour, label=label, **kw)


class _Builder:
    def __init__(self, runs: list[rp.RunData]):
        self.runs, self.labels = runs, rp.run_labels(runs)
        self.changes = [rp.schedule_changes(r) for r in runs]
        self.multi = len(runs) > 1
        self.legend_colour = "#555555" if self.multi else _colour(0)
        self.last = max((r.last_step or 0 for r in runs), default=0)
        self.run_h = 0.3 * math.ceil(len(runs) / 4) + 0.1 if self.multi else 0.0  # inches for the run legend
        self.figures: list[ReportFigure] = []

    def caption(self, kind: str, d: str = "", **fields) -> str:
        sched = "; dashed verticals mark schedule changes, labelled with the new stage" if any(self.changes) else ""
        return CAPTIONS[kind].format(d=d, sm=SMOOTH, sched=sched, **{"note": "", **fields})

    def new(self, w: float, h: float, nrows: int = 1, ncols: int = 1, top: float = 0.4, constrained: bool = False):
        """A figure w × h inches, plus a row for the run legend when runs are compared."""
        hh = h + self.run_h
        fig = Figure(figsize=(w, hh), dpi=DPI, layout="constrained" if constrained else None)
        FigureCanvasAgg(fig)
        if not constrained:
            fig.subplots_adjust(left=0.8 / w, right=1 - 0.25 / w, bottom=(0.55 + self.run_h) / hh, top=1 - top / hh,
                                wspace=0.32, hspace=0.6)  # fmt: skip
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat:  # fewer ticks than the default: each costs a text to lay out and draw
            ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 5, 10]))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        return fig, axes

    def legend_below(self, fig: Figure, handles: list, ncol: int) -> None:
        """A legend under the axes, off the data: the figure grows by its rows, the axes keep their size."""
        (w, h), sp, extra = fig.get_size_inches(), fig.subplotpars, 0.2 * math.ceil(len(handles) / ncol) + 0.05
        fig.set_size_inches(w, h + extra)
        fig.subplots_adjust(bottom=(sp.bottom * h + extra) / (h + extra), top=1 - (1 - sp.top) * h / (h + extra))
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, self.run_h / (h + extra)), ncol=ncol,
                   frameon=False)  # fmt: skip

    def save(self, fig: Figure, section: str, kind: str, caption: str, name: str = "", **kw) -> None:
        """Render to PNG; `wide` (a full-width figure), `run_legend` (default: when runs are compared)."""
        run_legend = kw.get("run_legend", self.multi and kind != "transfer")
        if run_legend is True:
            run_legend = [_line(_colour(i), lab, lw=2.5) for i, lab in enumerate(self.labels)]
        if run_legend:
            fig.legend(handles=run_legend, loc="lower center", ncol=min(4, len(run_legend)), frameon=False, fontsize=8)
        title = fig.get_suptitle() or fig.axes[0].get_title()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        w, h = fig.canvas.get_width_height()
        fig.clear()
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or f"{section}-{kind.replace('_', '-')}")  # a file, an HTML id
        self.figures.append(ReportFigure(name, section, kind, title, caption, buf.getvalue(), w, h, kw.get("wide")))

    def step_axes(self, ax, ylabel: str, title: str, stage_labels: bool = True) -> None:
        """Schedule changes, x from 0 to the runs' last step (domains line up across figures), labels."""
        for i, changes in enumerate(self.changes):
            for c in changes:
                ax.axvline(c.step, color=_colour(i), ls="--", lw=1.0, alpha=0.75, zorder=1)
                if stage_labels:
                    ax.text(c.step, 0.99, f" {c.label}", transform=ax.get_xaxis_transform(), color=_colour(i),
                            **_STAGE_TEXT)  # fmt: skip
        if self.last > 0:
            ax.set_xlim(-0.015 * self.last, 1.015 * self.last)
        ax.set(xlabel="step", ylabel=ylabel, title=title)

    def train_curve(self, ax, domain: str, key: str) -> bool:
        """Raw faint and smoothed per run; False when no run has the metric."""
        series = rp.overlay_series(self.runs, domain, key)
        for s in series:
            ax.plot(s.steps, s.values, color=_colour(s.run_index), lw=0.8, alpha=0.3)
            ax.plot(s.steps, smooth(s.values), color=_colour(s.run_index), lw=1.8)
        return bool(series)

    def step_legend(self, fig: Figure, extra: list) -> None:
        c = self.legend_colour
        handles = [_line(c, "train, per step", lw=0.8, alpha=0.4), _line(c, f"train, {SMOOTH}-step moving average")]
        sched = [_line("#777777", "schedule change", ls="--", lw=1)] if any(self.changes) else []
        self.legend_below(fig, handles + extra + sched, ncol=3)

    # ------------------------------------------------------------------------------------ per domain

    def score(self, d: str) -> bool:
        key = rp.score_key(self.runs, d)
        what = "accuracy" if key == "accuracy" else "mean reward"
        fig, ((ax,),) = self.new(6.4, 3.8)
        drawn, evals, boundary = self.train_curve(ax, d, key), rp.overlay_series(self.runs, d, key, "eval"), False
        for s in evals:
            ax.plot(s.steps, s.values, "o", color=_colour(s.run_index), ms=7, mec="white", zorder=4)
            marks = {e["step"] for e in self.runs[s.run_index].evals if isinstance(e.get("boundary"), dict)}
            if at := [(st, v) for st, v in zip(s.steps, s.values) if st in marks]:
                boundary = True
                ax.plot(*zip(*at), "D", ms=11, mfc="none", mec="black", mew=1.2, zorder=5)
        if not drawn and not evals:
            return False
        extra = [_line(self.legend_colour, "evaluation", marker="o", ls="", ms=7)]
        extra += [_line("none", "stage-boundary eval", marker="D", ls="", ms=9, mec="black")] if boundary else []
        self.step_legend(fig, extra)
        ylabel = "accuracy (fraction correct)" if key == "accuracy" else "mean reward"
        self.step_axes(ax, ylabel, f"{d}: {what}, train and evaluation")
        note = ", a diamond marking an evaluation at a curriculum stage boundary" if boundary else ""
        self.save(fig, d, "score", self.caption("score", d, what=what, note=note))
        return True

    def entropy(self, d: str) -> bool:
        fig, ((ax,),) = self.new(6.4, 3.8)
        if not self.train_curve(ax, d, "entropy_mean"):
            return False
        self.step_legend(fig, [])
        self.step_axes(ax, "mean token entropy (nats)", f"{d}: token entropy of training samples")
        ax.set_ylim(bottom=0)
        self.save(fig, d, "entropy", self.caption("entropy", d))
        return True

    def diversity(self, d: str) -> bool:
        panels = []
        for title, keys, ylabel in DIVERSITY_PANELS:
            lines = [(i, eff, s) for i, k in enumerate(keys) for eff in (False, True)
                     for s in rp.overlay_series(self.runs, d, f"effective_{k}" if eff else k)]  # fmt: skip
            if lines:
                panels.append((title, keys, ylabel, lines))
        if not panels:
            return False
        ncols, nrows = min(3, len(panels)), math.ceil(len(panels) / 3)
        fig, axes = self.new(4.4 * ncols, 0.3 + 3.0 * nrows, nrows, ncols, top=0.75)
        sizes = {g for r in self.runs if (g := r.group_size)}
        group = f"group of {sizes.pop()}" if len(sizes) == 1 else "group"
        for n, (title, keys, ylabel, lines) in enumerate(panels):
            ax = axes[n // ncols][n % ncols]
            present = sorted({i for i, _eff, _s in lines})  # shades over the measures this panel has
            for i, eff, s in lines:
                colour = _shade(_colour(s.run_index), present.index(i), len(present))
                ax.plot(s.steps, smooth(s.values), color=colour, ls="--" if eff else "-", lw=1.5)
            handles = [_line(_shade(self.legend_colour, j, len(present)), _label(keys[i]), lw=1.5)
                       for j, i in enumerate(present)]  # fmt: skip
            if any(eff for _i, eff, _s in lines):
                handles.append(_line("#777777", "effective (passing only)", ls="--", lw=1.5))
            ax.legend(handles=handles, loc="best")
            self.step_axes(ax, ylabel.replace("distinct samples per", f"distinct samples per {group}"), title, False)
        for n in range(len(panels), nrows * ncols):
            axes[n // ncols][n % ncols].remove()
        fig.suptitle(f"{d}: diversity of the samples of each prompt (training rollouts)", fontsize=11)
        self.save(fig, d, "diversity", self.caption("diversity", d), wide=len(panels) > 2)
        return True

    def effective_rank(self, d: str) -> bool:
        if not (series := rp.overlay_series(self.runs, d, "effective_rank")):
            return False
        fig, ((ax,),) = self.new(6.4, 3.8)
        for s in series:
            ax.plot(s.steps, s.values, "o-", color=_colour(s.run_index), ms=4, lw=1.5)
        self.step_axes(ax, "effective rank (dimensions)", f"{d}: effective rank of hidden states")
        self.save(fig, d, "effective_rank", self.caption("effective_rank", d))
        return True

    def pass_at_k(self, d: str) -> bool:
        fig, ((ax,),) = self.new(6.4, 3.8)
        ks: set[int] = set()
        for i, run in enumerate(self.runs):
            rows = [(e["step"], p) for e in run.evals if (p := rp.pass_at_k(e, d))]
            if len(rows) > 6:  # first, last and evenly spaced between
                rows = [rows[round(j * (len(rows) - 1) / 5)] for j in range(6)]
            for j, (step, points) in enumerate(rows):
                ks.update(k for k, _ in points)
                label = f"{self.labels[i]}: step {step}" if self.multi else f"step {step}"
                ax.plot(*zip(*points), "o-", color=_shade(_colour(i), j, len(rows)), ms=4, lw=1.6, label=label)
        if not ks:
            return False
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ks), [str(k) for k in sorted(ks)])
        ax.minorticks_off()
        ax.legend(loc="best", title="evaluation at")
        ax.set(xlabel="k (samples per prompt)", ylabel="pass@k (fraction of prompts solved)", title=f"{d}: pass@k")
        self.save(fig, d, "pass_at_k", self.caption("pass_at_k", d))
        return True

    def law(self, d: str) -> bool:
        fig, ((ax,),) = self.new(6.4, 3.9)
        held, fits = False, set()  # fits: a > 0, per fitted run
        for i, run in enumerate(self.runs):
            if not (pts := rp.law_points(run, d)):
                continue
            c = _colour(i)
            xs, ys = [math.exp(p.entropy) for p in pts], [p.score for p in pts]
            law, source = rp.law_of(run, d)
            hold = (law or {}).get("holdout") if isinstance((law or {}).get("holdout"), dict) else {}
            nfit, npred = _count(hold.get("fit_points")), _count(hold.get("predicted_points"))
            nfit = nfit if 0 < nfit < len(pts) else len(pts)
            out = range(nfit, min(len(pts), nfit + npred) if npred else len(pts))
            kept = [(x, y) for j, (x, y) in enumerate(zip(xs, ys)) if j not in out]
            ax.plot(*zip(*kept), "o", color=c, ms=7, label="evaluations")
            for x, y, p in zip(xs, ys, pts):
                ax.annotate(f"{p.step}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7, color=c)
            if law is not None:  # to exp(H) = 1 and its ceiling only where the score falls with entropy (a > 0)
                a, b, r2 = law["a"], law["b"], law.get("r2")
                fits.add(a > 0)
                lo, hi = (min(1.0, min(xs)) if a > 0 else min(xs) * 0.97), max(xs) * 1.03
                fit = f"R = {'−' if a >= 0 else '+'}{abs(a):.3f}·exp(H) {'+' if b >= 0 else '−'} {abs(b):.3f}"
                fit += f", R² {r2:.2f}" if rp.finite(r2) is not None else ""
                fit += (" (fitted here)" if source == "report" else "") + ("" if a > 0 else ": a ≤ 0, no ceiling")
                ax.plot([lo, hi], [b - a * lo, b - a * hi], "-", color=c, lw=1.6, label=fit)
                if a > 0:
                    top = law["ceiling"]
                    ax.axhline(top, color=c, ls=":", lw=1.4, label=f"ceiling b − a = {top:.3f}")
            if out:
                held, ox, oy = True, [xs[j] for j in out], [ys[j] for j in out]
                ax.plot(ox, oy, "o", ms=8, mfc="white", mec=c, mew=1.5, label="held out")
                early, mae = rp.fit_law(pts[:nfit]), rp.finite(hold.get("mean_abs_error"))
                if early is not None:
                    pred = [early["b"] - early["a"] * x for x in ox]
                    ax.vlines(ox, oy, pred, colors=c, lw=0.8, alpha=0.6)
                    maes = f", mean abs. error {mae:.3f}" if mae is not None and not self.multi else ""
                    ax.plot(ox, pred, "x", color=c, ms=8, mew=1.8, label=f"predicted from earlier evals{maes}")
        if not ax.lines:
            return False
        entries: dict[str, Line2D] = {}  # compared runs: one grey entry per kind of mark; fits stay in run colours
        for h, label in zip(*ax.get_legend_handles_labels()):
            grey = self.multi and not label.startswith(("R =", "ceiling"))
            mfc = "white" if h.get_markerfacecolor() == "white" else "#555555"
            entries.setdefault(label, _line("#555555", label, marker=h.get_marker(), ls="", mfc=mfc) if grey else h)
        self.legend_below(fig, list(entries.values()), ncol=2)
        ylabel = "eval accuracy (fraction correct)" if rp.score_key(self.runs, d) == "accuracy" else "eval mean reward"
        ax.set(xlabel="exp(H), H = mean train token entropy (nats) since the previous evaluation", ylabel=ylabel,
               title=f"{d}: entropy–performance law R = −a·exp(H) + b")  # fmt: skip
        note = ", and hollow points were held out, × marking what a fit on the earlier evaluations predicted for them"
        fit = ("the solid line is the fit R = −a·exp(H) + b and the dotted line its ceiling b − a, the score "
               "predicted at zero entropy" if True in fits else "the solid line is the fit R = −a·exp(H) + b (no "
               "ceiling: a ≤ 0, the score does not fall as entropy falls)" if fits else "no fit line: it needs two "
               "evaluations at different entropies")  # fmt: skip
        self.save(fig, d, "law", self.caption("law", d, fit=fit, note=note if held else ""))
        return True

    # ------------------------------------------------------------------------------------ run level

    def entropy_overview(self, domains: list[str]) -> None:
        fig, ((ax,),) = self.new(9.0, 4.0)
        for j, d in enumerate(domains):
            for s in rp.overlay_series(self.runs, d, "entropy_mean"):
                ax.plot(s.steps, smooth(s.values), color=_colour(j), lw=1.8,
                        ls=RUN_STYLES[s.run_index % 4], label=d if s.run_index == 0 else None)  # fmt: skip
        if not ax.lines:
            return
        ax.legend(loc="best", title="domain")
        self.step_axes(ax, "mean token entropy (nats)", "token entropy of every domain")
        ax.set_ylim(bottom=0)
        styles = [_line("#555555", lab, ls=RUN_STYLES[i % 4], lw=2) for i, lab in enumerate(self.labels)]
        caption = self.caption("entropy_overview", note=" (line style: the run, as in the legend below)" * self.multi)
        self.save(fig, "runs", "entropy_overview", caption, wide=True, run_legend=styles if self.multi else None)

    def transfer(self) -> None:
        for i, (run, label) in enumerate(zip(self.runs, self.labels)):
            t = run.summary.get("transfer")
            if not isinstance(t, dict) or not t.get("R") or not t.get("domains") or not t.get("stages"):
                continue
            rows, cols = list(t["stages"]), list(t["domains"])
            grid = [[v if rp.finite(v) is not None else math.nan for v in row] for row in t["R"]]
            fig, ((ax,),) = self.new(2.2 + 1.3 * len(cols), 1.4 + 0.55 * len(rows), constrained=True)
            known = [v for r in grid for v in r if v == v]
            cmap = colormaps["viridis"].with_extremes(bad="#dddddd")
            im = ax.imshow(grid, cmap=cmap, aspect="auto", vmin=min([0.0, *known]), vmax=max([1.0, *known]))
            for r, row in enumerate(grid):
                for c, v in enumerate(row):
                    text, dark = ("—", True) if v != v else (f"{v:.2f}", im.norm(v) > 0.6)
                    ax.text(c, r, text, ha="center", va="center", fontsize=9, color="black" if dark else "white")
            ax.grid(False)
            ax.set(xticks=range(len(cols)), xticklabels=cols, yticks=range(len(rows)), yticklabels=rows)
            ax.set(xlabel="evaluated domain", ylabel="after training stage", title=f"transfer matrix R — {label}")
            fig.colorbar(im, ax=ax, label="eval score")
            self.save(fig, "runs", "transfer", self.caption("transfer"), name=f"runs-transfer-{i + 1}")


def build_figures(runs: list[rp.RunData]) -> tuple[list[ReportFigure], dict[str, list[str]]]:
    """Every figure of the report, and per domain the notes for what its records lack."""
    b, missing = _Builder(runs), {}
    with rc_context(_RC):
        b.entropy_overview(rp.domains_of(runs))
        b.transfer()
        for d in rp.domains_of(runs):
            open_ended = rp.score_key(runs, d) == "reward_mean"  # no pass@k expected
            missing[d] = [text for kind, text in MISSING.items()
                          if not getattr(b, kind)(d) and not (kind == "pass_at_k" and open_ended)]  # fmt: skip
    return b.figures, missing

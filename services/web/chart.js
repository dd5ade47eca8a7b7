/**
 * A small line chart drawn as inline SVG: one series of (step, value) points, axes with ticks
 * and labels, and vertical marks where the schedule version changed. No library: a viewBox,
 * a polyline, circles, text.
 */

import { num, s } from "./dom.js";

const W = 250;
const H = 150;
const M = { left: 42, right: 8, top: 22, bottom: 32 };
const MAX_DOTS = 150;

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten). */
export function ticks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((v) => v >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function extent(values, pad) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    const d = Math.abs(lo) * 0.1 || 1;
    return [lo - d, hi + d];
  }
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

/**
 * `points`: [{x, y, version}] in x order; `marks`: [{x, version}] where the version changed;
 * `xDomain`: [lo, hi] shared by the charts of a run, so their steps line up; `name`: the title
 * screen readers hear (default `title`).
 */
export function lineChart({ title, name = title, yLabel, points, marks = [], xDomain = null }) {
  const finite = points.filter((p) => Number.isFinite(p.y));
  const last = finite.length ? finite[finite.length - 1] : null;
  const root = s("svg", {
    class: "chart",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `${name}: ${finite.length} points${last ? `, last ${num(last.y)} at step ${last.x}` : ""}`,
    "data-points": finite.length,
  });
  root.append(s("text", { class: "chart-title", x: M.left, y: 15 }, title));
  const [x0, x1] = xDomain && xDomain[1] > xDomain[0] ? xDomain : extent(finite.map((p) => p.x).concat([0]), 0);
  if (!finite.length) {
    root.append(s("text", { class: "chart-empty", x: W / 2, y: H / 2, "text-anchor": "middle" }, "no data yet"));
    return root;
  }
  const [y0, y1] = extent(finite.map((p) => p.y), 0.08);
  const px = (x) => M.left + ((x - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const py = (y) => H - M.bottom - ((y - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom);
  const plot = s("g", { class: "axes" });
  const bottom = H - M.bottom;
  plot.append(s("line", { x1: M.left, y1: bottom, x2: W - M.right, y2: bottom, class: "axis" }));
  plot.append(s("line", { x1: M.left, y1: M.top, x2: M.left, y2: bottom, class: "axis" }));
  for (const t of ticks(y0, y1, 4)) {
    plot.append(s("line", { x1: M.left, y1: py(t), x2: W - M.right, y2: py(t), class: "grid" }));
    plot.append(s("text", { x: M.left - 4, y: py(t) + 3, "text-anchor": "end", class: "tick" }, num(t)));
  }
  for (const t of ticks(x0, x1, 4).filter((v) => Number.isInteger(v))) {
    plot.append(s("line", { x1: px(t), y1: bottom, x2: px(t), y2: bottom + 3, class: "axis" }));
    plot.append(s("text", { x: px(t), y: bottom + 13, "text-anchor": "middle", class: "tick" }, String(t)));
  }
  plot.append(s("text", { x: (M.left + W - M.right) / 2, y: H - 4, "text-anchor": "middle", class: "label" }, "step"));
  const ly = (M.top + bottom) / 2;
  plot.append(
    s("text", { x: 11, y: ly, transform: `rotate(-90 11 ${ly})`, "text-anchor": "middle", class: "label" }, yLabel),
  );
  root.append(plot);
  for (const m of marks.filter((mk) => mk.x >= x0 && mk.x <= x1)) {
    const x = px(m.x);
    root.append(
      s(
        "g",
        { class: "vmark", "data-version": m.version },
        s("line", { x1: x, y1: M.top, x2: x, y2: bottom }),
        s("text", { x: x + 2, y: M.top + 8 }, `v${m.version}`),
        s("title", {}, `schedule version ${m.version} from step ${m.x}`),
      ),
    );
  }
  const line = finite.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ");
  root.append(s("polyline", { points: line, class: "series" }));
  if (finite.length <= MAX_DOTS) {
    const dots = s("g", { class: "dots" });
    for (const p of finite) {
      dots.append(
        s(
          "circle",
          { cx: px(p.x).toFixed(1), cy: py(p.y).toFixed(1), r: 2.5, class: "pt" },
          s("title", {}, `step ${p.x}: ${num(p.y)}${p.version ? ` (schedule v${p.version})` : ""}`),
        ),
      );
    }
    root.append(dots);
  }
  return root;
}

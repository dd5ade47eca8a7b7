/**
 * The live per-domain curves of one run: the metrics records the driver reported (each names
 * the schedule version its step was planned with), kept as they arrive with `since=<last step>`,
 * and drawn as three small charts per domain: reward (accuracy where the domain reports it),
 * token entropy, and a diversity measure (distinct-2, else self-BLEU).
 */

import { lineChart } from "./chart.js";
import { h, replace } from "./dom.js";

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

/** The panels of a domain: which metric each shows, chosen from what the domain reports. */
const PANELS = [
  {
    key: "reward",
    choose: (rows) =>
      rows.some((m) => isNumber(m.accuracy))
        ? { metric: "accuracy", title: "accuracy", yLabel: "accuracy" }
        : { metric: "reward_mean", title: "reward", yLabel: "mean reward" },
  },
  {
    key: "entropy",
    choose: () => ({ metric: "entropy_mean", title: "token entropy", yLabel: "nats" }),
  },
  {
    key: "diversity",
    choose: (rows) =>
      rows.some((m) => isNumber(m.distinct_2)) || !rows.some((m) => isNumber(m.self_bleu))
        ? { metric: "distinct_2", title: "distinct-2", yLabel: "distinct-2" }
        : { metric: "self_bleu", title: "self-BLEU (lower: more diverse)", yLabel: "self-BLEU" },
  },
];

export class Curves {
  constructor(container) {
    this.container = container;
    this.reset();
  }

  /** Forget every record (another run was selected, or the user logged out). */
  reset() {
    this.records = [];
    this.lastStep = 0;
    replace(this.container, h("p", { class: "muted" }, "No steps reported yet."));
  }

  /** Add records (step order, steps after `lastStep`); true when any was new. */
  add(records) {
    let added = false;
    for (const r of records) {
      if (r.step > this.lastStep) {
        this.records.push(r);
        this.lastStep = r.step;
        added = true;
      }
    }
    return added;
  }

  /** Steps where the applied schedule version changed: [{x: step, version}]. */
  versionMarks() {
    const marks = [];
    let prev = null;
    for (const r of this.records) {
      if (r.schedule_version !== null && r.schedule_version !== prev) {
        if (prev !== null) marks.push({ x: r.step, version: r.schedule_version });
        prev = r.schedule_version;
      }
    }
    return marks;
  }

  domains() {
    const seen = [];
    for (const r of this.records) for (const d of Object.keys(r.domains || {})) if (!seen.includes(d)) seen.push(d);
    return seen;
  }

  render() {
    if (!this.records.length) return;
    const lo = this.records[0].step;
    const hi = this.lastStep;
    const xDomain = hi > lo ? [lo, hi] : [lo - 1, hi + 1];
    const marks = this.versionMarks();
    const rows = this.domains().map((domain) => {
      const mine = this.records.filter((r) => r.domains && r.domains[domain]);
      const metrics = mine.map((r) => r.domains[domain]);
      const charts = PANELS.map((panel) => {
        const { metric, title, yLabel } = panel.choose(metrics);
        const points = mine
          .map((r) => ({ x: r.step, y: r.domains[domain][metric], version: r.schedule_version }))
          .filter((p) => isNumber(p.y));
        return h(
          "figure",
          { class: "chart-box", dataset: { domain, panel: panel.key, metric } },
          lineChart({ title, name: `${domain}: ${title}`, yLabel, points, marks, xDomain }),
        );
      });
      return h("div", { class: "domain-row", dataset: { domain } }, h("h3", {}, domain), h("div", { class: "charts" }, charts));
    });
    const last = this.records[this.records.length - 1];
    replace(
      this.container,
      h(
        "p",
        { class: "muted" },
        `${this.records.length} steps, up to step ${last.step} (schedule v${last.schedule_version ?? "–"}). `,
        "Dashed lines: where the applied schedule version changed.",
      ),
      rows,
    );
  }
}

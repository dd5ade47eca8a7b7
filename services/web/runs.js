/**
 * The runs list (GET /v1/runs, refreshed by the page's poll) and the selected run's status:
 * step, active stage, and the latest schedule version next to the one the driver applied.
 */

import { h, num, replace } from "./dom.js";

const dash = (v) => (v === null || v === undefined ? "–" : String(v));

/** The list of runs; `onSelect(runId)` when a run is picked. */
export function renderRuns(container, list, selected, onSelect) {
  const runs = list.runs || [];
  const unavailable = list.unavailable || [];
  if (!runs.length && !unavailable.length) {
    replace(container, h("p", { class: "muted" }, "No runs in this control plane's runs folder yet."));
    return;
  }
  const rows = runs.map((r) =>
    h(
      "tr",
      { class: r.run_id === selected ? "selected" : "", dataset: { run: r.run_id } },
      h(
        "td",
        {},
        h(
          "button",
          {
            type: "button",
            class: "link",
            "aria-current": r.run_id === selected ? "true" : false,
            onclick: () => onSelect(r.run_id),
          },
          r.run_id,
        ),
      ),
      h("td", {}, h("span", { class: `badge status-${r.status}` }, r.status)),
      h("td", { class: "num" }, dash(r.step)),
      h("td", {}, r.stage ? `${r.stage} (${r.stage_kind})` : "–"),
      h("td", { class: "num" }, `v${r.latest_version}`, h("span", { class: "muted" }, ` (applied ${r.applied_version === null ? "–" : `v${r.applied_version}`})`)),
    ),
  );
  const broken = unavailable.map((r) =>
    h(
      "tr",
      { class: "unavailable", dataset: { run: r.run_id } },
      h("td", {}, r.run_id),
      h("td", { colspan: 4 }, h("span", { class: "badge status-error" }, "unavailable"), " ", r.detail),
    ),
  );
  replace(
    container,
    h(
      "table",
      { class: "runs" },
      h("thead", {}, h("tr", {}, ["Run", "Status", "Step", "Stage", "Version"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows, broken),
    ),
  );
}

/** The selected run's status as a description list (each value has data-field=<name>). */
export function renderStatus(dl, status) {
  if (!status) {
    replace(dl, h("p", { class: "muted" }, "Select a run."));
    return;
  }
  const item = (label, field, ...value) => [h("dt", {}, label), h("dd", { dataset: { field } }, ...value)];
  replace(
    dl,
    item("Status", "status", h("span", { class: `badge status-${status.status}` }, status.status)),
    item("Step", "step", dash(status.step)),
    item("Active stage", "stage", status.stage ? `${status.stage} (${status.stage_kind})` : "none (all finished)"),
    item("Latest version", "latest_version", `v${status.latest_version}`),
    item(
      "Applied version",
      "applied_version",
      status.applied_version === null ? "–" : `v${status.applied_version}`,
    ),
    item("Applied at step", "applied_at_step", dash(status.applied_at_step)),
    item("Paused", "paused", status.run_paused ? "the run" : status.stage_paused ? "the active stage" : "no"),
    item("Stages finished", "stages", `${num(status.stages_finished)} of ${num(status.stages_total)}`),
  );
}

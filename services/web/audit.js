/**
 * The audit log of the selected run: every schedule change (who, when, why, what), newest
 * first. Entries arrive with `since=<last version>` each time the schedule is refreshed.
 */

import { h, num, replace, when } from "./dom.js";

function setting(v) {
  if (!v) return "–";
  const target = v.entropy_target === null || v.entropy_target === undefined ? "none" : num(v.entropy_target);
  return `weight ${num(v.weight)}, entropy target ${target}`;
}

/** What a change did, in words, from its action and detail. */
export function describe(entry) {
  const d = entry.detail || {};
  switch (entry.action) {
    case "create":
      return d.stages ? `stages: ${d.stages.join(" → ")}` : "initial schedule";
    case "replace": {
      const parts = [`order: ${(d.order || []).join(" → ")}`];
      if (d.added && d.added.length) parts.push(`added ${d.added.join(", ")}`);
      if (d.removed && d.removed.length) parts.push(`removed ${d.removed.join(", ")}`);
      return parts.join("; ");
    }
    case "pause":
    case "resume":
      return d.stage ? `stage ${d.stage}` : "the whole run";
    case "set_domain":
      return `${d.domain} in ${d.stage}: ${setting(d.before)} → ${setting(d.after)}`;
    case "advance":
      return `finished ${d.from}; ${d.to ? `now ${d.to}` : "no stage left"}`;
    case "finish":
      return "the run finished";
    case "reopen":
      return "the run was reopened for more steps";
    case "rewind":
      return `back to version ${d.to_version} (resumed at step ${d.step})`;
    default:
      return Object.keys(d).length ? JSON.stringify(d) : "";
  }
}

export class AuditLog {
  constructor(list) {
    this.list = list;
    this.reset();
  }

  reset() {
    this.entries = [];
    this.lastVersion = 0;
    replace(this.list, h("li", { class: "muted" }, "No changes loaded yet."));
  }

  /** Add entries (oldest first, versions after `lastVersion`); true when any was new. */
  add(entries) {
    const fresh = entries.filter((e) => e.version > this.lastVersion);
    for (const e of fresh) this.entries.push(e);
    if (fresh.length) this.lastVersion = fresh[fresh.length - 1].version;
    return fresh.length > 0;
  }

  render() {
    const items = [...this.entries].reverse().map((e) =>
      h(
        "li",
        { class: "audit-entry", dataset: { version: e.version, action: e.action } },
        h(
          "div",
          { class: "audit-head" },
          h("span", { class: "badge" }, `v${e.version}`),
          h("strong", { class: "action" }, e.action),
          h("span", { class: "author" }, e.author),
          h("time", { datetime: e.time, class: "muted" }, when(e.time)),
          h("span", { class: "muted" }, `after step ${e.step}`),
        ),
        h("div", { class: "what" }, describe(e)),
        e.reason ? h("div", { class: "why" }, `“${e.reason}”`) : null,
      ),
    );
    replace(this.list, items.length ? items : h("li", { class: "muted" }, "No changes yet."));
  }
}

/**
 * The schedule's stages as an ordered list: name, kind, status, progress, paused flag, and per
 * domain its weight and entropy target as small forms. Reordering works two ways: HTML5 drag and
 * drop of a stage's header, and the ↑/↓ buttons (keyboard users and tests). This module only
 * draws and reports what the user asked for (`actions`); schedule.js sends it to the API.
 */

import { h, num } from "./dom.js";

function rule(r) {
  switch (r.type) {
    case "steps":
      return `after ${r.steps} steps`;
    case "plateau":
      return `when ${r.domain} ${r.metric} plateaus (window ${r.window}, min Δ ${num(r.min_delta)})`;
    case "entropy":
      return `when ${r.domain} ${r.metric} is ${r.direction} ${num(r.threshold)}`;
    default:
      return "by hand (Advance)";
  }
}

/** The stage order after moving `name` by `delta` places (null when it cannot move). */
export function moved(order, name, delta) {
  const i = order.indexOf(name);
  const j = i + delta;
  if (i < 0 || j < 0 || j >= order.length) return null;
  const out = [...order];
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

/** The stage order after dropping `dragged` before or after `target`. */
export function dropped(order, dragged, target, after) {
  if (dragged === target || !order.includes(dragged) || !order.includes(target)) return null;
  const out = order.filter((n) => n !== dragged);
  out.splice(out.indexOf(target) + (after ? 1 : 0), 0, dragged);
  return out.join() === order.join() ? null : out;
}

function domainForm(stage, name, setting, locked, actions) {
  const target = setting.entropy_target === null || setting.entropy_target === undefined ? "" : setting.entropy_target;
  const where = `${name} in ${stage.name}`;
  return h(
    "form",
    {
      class: "domain",
      dataset: { stage: stage.name, domain: name },
      onsubmit: (e) => {
        e.preventDefault();
        actions.setDomain(stage.name, name, e.currentTarget);
      },
    },
    h("span", { class: "dname" }, name),
    h("input", {
      type: "number", name: "weight", step: "any", value: setting.weight, disabled: locked,
      "aria-label": `weight of ${where}`, "data-focus": `w:${stage.name}:${name}`,
    }),
    h("input", {
      type: "number", name: "entropy_target", step: "any", value: target, placeholder: "none", disabled: locked,
      "aria-label": `entropy target of ${where} (nats; empty: none)`, "data-focus": `t:${stage.name}:${name}`,
    }),
    h("button", { type: "submit", disabled: locked, "aria-label": `Set ${where}` }, "Set"),
  );
}

function progressLine(stage, p) {
  const steps = p.steps ?? 0;
  const parts = [h("span", {}, `${steps} step${steps === 1 ? "" : "s"} trained`)];
  if (p.started_at_step !== null && p.started_at_step !== undefined) parts.push(` · from step ${p.started_at_step}`);
  if (p.finished_at_step !== null && p.finished_at_step !== undefined) parts.push(` · done after ${p.finished_at_step}`);
  parts.push(` · advances ${rule(stage.advance)}`);
  const bar =
    stage.advance.type === "steps"
      ? h("progress", { max: stage.advance.steps, value: Math.min(steps, stage.advance.steps), "aria-label": "progress" })
      : null;
  return h("div", { class: "stage-progress" }, parts, bar);
}

/**
 * Draw `view.stages` into `list`. `actions`: move(name, delta), reorder(order), toggleStage(name),
 * setDomain(stage, domain, form), dragging(name|null). `readOnly` disables every control.
 */
export function renderStages(list, view, readOnly, actions) {
  const progress = Object.fromEntries(view.progress.map((p) => [p.name, p]));
  const order = view.stages.map((st) => st.name);
  const finished = (n) => (progress[n] || {}).status === "finished";
  const lockedRun = readOnly || view.finished;
  const items = view.stages.map((stage, i) => {
    const p = progress[stage.name] || { status: "pending" };
    const done = p.status === "finished";
    const locked = lockedRun || done;
    const canUp = !locked && i > 0 && !finished(order[i - 1]);
    const canDown = !locked && i < order.length - 1;
    const head = h(
      "div",
      {
        class: "stage-head",
        draggable: locked ? false : "true",
        ondragstart: (e) => {
          e.dataTransfer.setData("text/plain", stage.name);
          e.dataTransfer.effectAllowed = "move";
          e.currentTarget.closest("li").classList.add("dragging");
          actions.dragging(stage.name);
        },
        ondragend: (e) => {
          e.currentTarget.closest("li").classList.remove("dragging");
          actions.dragging(null);
        },
      },
      h("span", { class: "handle", "aria-hidden": "true", title: locked ? "" : "drag to reorder" }, locked ? "" : "⠿"),
      h("span", { class: "pos" }, `${i + 1}.`),
      h("strong", { class: "name" }, stage.name),
      h("span", { class: "badge kind" }, stage.kind),
      h("span", { class: `badge status-${p.status}` }, p.status),
      stage.paused ? h("span", { class: "badge status-paused", dataset: { flag: "paused" } }, "paused") : null,
      h("span", { class: "spacer" }),
      h("button", {
        type: "button", class: "icon move-up", disabled: !canUp, "aria-label": `Move ${stage.name} up`,
        "data-focus": `up:${stage.name}`, onclick: () => actions.move(stage.name, -1),
      }, "↑"),
      h("button", {
        type: "button", class: "icon move-down", disabled: !canDown, "aria-label": `Move ${stage.name} down`,
        "data-focus": `down:${stage.name}`, onclick: () => actions.move(stage.name, 1),
      }, "↓"),
      h("button", {
        type: "button", class: "stage-pause", disabled: locked, "data-focus": `pause:${stage.name}`,
        "aria-label": `${stage.paused ? "Resume" : "Pause"} stage ${stage.name}`,
        onclick: () => actions.toggleStage(stage.name),
      }, stage.paused ? "Resume stage" : "Pause stage"),
    );
    const domains = Object.entries(stage.domains).map(([d, setting]) => domainForm(stage, d, setting, locked, actions));
    return h(
      "li",
      {
        class: `stage status-${p.status}`,
        dataset: { stage: stage.name },
        ondragover: (e) => {
          const li = e.currentTarget;
          if (done || lockedRun) return;
          e.preventDefault();
          const r = li.getBoundingClientRect();
          const after = e.clientY > r.top + r.height / 2;
          li.classList.toggle("drop-after", after);
          li.classList.toggle("drop-before", !after);
        },
        ondragleave: (e) => e.currentTarget.classList.remove("drop-before", "drop-after"),
        ondrop: (e) => {
          const li = e.currentTarget;
          e.preventDefault();
          const after = li.classList.contains("drop-after");
          li.classList.remove("drop-before", "drop-after");
          const next = dropped(order, e.dataTransfer.getData("text/plain"), stage.name, after);
          if (next) actions.reorder(next);
        },
      },
      head,
      progressLine(stage, p),
      h(
        "div",
        { class: "domains" },
        h("div", { class: "domain domain-head", "aria-hidden": "true" }, h("span", {}, "domain"), h("span", {}, "weight"),
          h("span", {}, "entropy target"), h("span", {})),
        domains,
      ),
    );
  });
  list.replaceChildren(...items);
}

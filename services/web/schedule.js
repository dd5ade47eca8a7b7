/**
 * The schedule panel of the selected run: its stages (stages.js), the run's controls (pause or
 * resume, advance) and every write. Each write sends `base_version` = the version the page
 * shows, so a change someone else made meanwhile is refused (409) instead of overwritten; the
 * page then says so and offers a reload. While the user is editing a value or dragging a stage,
 * the poll does not redraw the list under them; it says when a newer version exists instead.
 */

import { api, seg } from "./api.js";
import { h, replace, say } from "./dom.js";
import { moved, renderStages } from "./stages.js";

const ARM_MS = 5000;

export class SchedulePanel {
  /** `els`: stages, version, message, notice, pauseRun, advance, reason; `hooks`: changed(), forbidden(). */
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.readOnly = false;
    this.dragging = null;
    this.armed = null;
    els.pauseRun.addEventListener("click", () => this.toggleRun());
    els.advance.addEventListener("click", () => this.advance());
    els.stages.addEventListener("input", (e) => e.target.removeAttribute("aria-invalid"));
    this.setRun(null);
  }

  setRun(runId) {
    this.runId = runId;
    this.view = null;
    this.shown = "";
    this.disarm();
    say(this.els.message, "");
    say(this.els.notice, "");
    replace(this.els.stages, h("li", { class: "muted" }, runId ? "Loading the schedule…" : "Select a run."));
    replace(this.els.version, "");
    this.controls();
  }

  setReadOnly(flag) {
    this.readOnly = flag;
    this.controls();
    if (this.view) this.render(this.view);
  }

  /** Whether a redraw now would lose the user's work: an edited value, or a drag. */
  frozen() {
    if (this.dragging) return true;
    return [...this.els.stages.querySelectorAll("input")].some((i) => i.value !== i.defaultValue);
  }

  /** A schedule view from the poll: drawn unless the user is in the middle of something. */
  offer(view) {
    if (this.view && view.latest_version < this.view.latest_version) return; // read before our own write
    if (this.view && this.frozen()) {
      const newer = view.version !== this.view.version && !this.conflict; // a 409 already says so
      say(
        this.els.notice,
        newer ? `Version ${view.version} was saved while you were editing version ${this.view.version}; ` +
          "saving will be refused. Reload to see it." : "",
        "notice",
      );
      return;
    }
    this.render(view);
  }

  render(view) {
    const json = JSON.stringify(view) + this.readOnly;
    this.view = view;
    this.conflict = false;
    say(this.els.notice, "");
    if (json === this.shown) return;
    this.shown = json;
    const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.focus;
    renderStages(this.els.stages, view, this.readOnly, {
      move: (name, delta) => this.move(name, delta),
      reorder: (order) => this.reorder(order),
      toggleStage: (name) => this.toggleStage(name),
      setDomain: (stage, domain, form) => this.setDomain(stage, domain, form),
      dragging: (name) => {
        this.dragging = name;
      },
    });
    const applied = view.applied_version === null ? "–" : `v${view.applied_version}`;
    replace(
      this.els.version,
      h("span", { class: "badge version", "data-version": view.version }, `version ${view.version}`),
      ` applied ${applied}`,
      view.paused ? h("span", { class: "badge status-paused" }, "run paused") : null,
      view.finished ? h("span", { class: "badge status-finished" }, "run finished") : null,
    );
    this.controls();
    if (focused) this.refocus(focused);
  }

  refocus(key) {
    const el = this.els.stages.querySelector(`[data-focus="${CSS.escape(key)}"]`);
    if (el && !el.disabled) return el.focus();
    const stage = key.split(":")[1];
    const li = stage && this.els.stages.querySelector(`li[data-stage="${CSS.escape(stage)}"]`);
    const other = li && [...li.querySelectorAll("button")].find((b) => !b.disabled);
    if (other) other.focus();
  }

  controls() {
    const v = this.view;
    const off = this.readOnly || !v || v.finished;
    const { pauseRun, advance, reason } = this.els;
    pauseRun.disabled = off;
    pauseRun.textContent = v && v.paused ? "Resume run" : "Pause run";
    advance.disabled = off || !this.active();
    reason.disabled = off;
    if (!this.armed) advance.textContent = "Advance";
  }

  active() {
    const p = this.view && this.view.progress.find((x) => x.status === "active");
    return p ? p.name : null;
  }

  async reload() {
    if (!this.runId) return;
    try {
      const view = await api("GET", `/v1/runs/${seg(this.runId)}/schedule`);
      this.shown = "";
      say(this.els.message, "");
      this.render(view);
      this.hooks.changed();
    } catch (err) {
      this.explain(err);
    }
  }

  /** Send one write based on the version shown; draw the answer, or explain the refusal. */
  async write(method, path, body, onError) {
    if (!this.view) return; // the controls are disabled for a viewer; a 403 still explains itself
    const reason = this.els.reason.value.trim();
    const payload = { ...body, base_version: this.view.version, ...(reason ? { reason } : {}) };
    try {
      const view = await api(method, `/v1/runs/${seg(this.runId)}${path}`, payload);
      this.els.reason.value = "";
      say(this.els.message, "");
      this.shown = "";
      this.render(view);
      this.hooks.changed();
    } catch (err) {
      this.explain(err);
      if (onError) onError(err);
    }
  }

  explain(err) {
    const el = this.els.message;
    const b = err.body || {};
    if (err.status === 401) return; // the page is back at the login form
    if (err.status === 409 && b.error === "stale_version") {
      say(el, `The schedule changed since you loaded it (now version ${b.current_version}): reload`, "conflict");
      say(this.els.notice, "");
      this.conflict = true;
      el.append(" ", h("button", { type: "button", class: "reload", onclick: () => this.reload() }, "Reload"));
    } else if (err.status === 403) {
      say(el, `Read-only token: this action needs an operator token. (${err.message})`, "error");
      this.hooks.forbidden();
    } else if (err.status === 422) {
      say(el, `Not applied, invalid ${b.field || "value"}: ${err.message}`, "error");
    } else if (err.status === 409) {
      say(el, `Not applied: ${err.message}`, "conflict");
    } else {
      say(el, `Not applied: ${err.message}`, "error");
    }
  }

  move(name, delta) {
    const order = moved(this.view.stages.map((s) => s.name), name, delta);
    if (order) this.reorder(order);
  }

  reorder(order) {
    const byName = Object.fromEntries(this.view.stages.map((s) => [s.name, s]));
    return this.write("PUT", "/schedule", { stages: order.map((n) => byName[n]) });
  }

  toggleRun() {
    return this.write("POST", this.view.paused ? "/resume" : "/pause", {});
  }

  toggleStage(name) {
    const stage = this.view.stages.find((s) => s.name === name);
    return this.write("POST", stage.paused ? "/resume" : "/pause", { stage: name });
  }

  disarm() {
    clearTimeout(this.armTimer);
    this.armed = null;
    this.els.advance.classList.remove("armed");
    this.els.advance.textContent = "Advance";
  }

  /** Advance asks once more (a second click within 5 s): it finishes the active stage for good. */
  advance() {
    const stage = this.active();
    if (!stage) return;
    if (this.armed !== stage) {
      this.armed = stage;
      this.els.advance.classList.add("armed");
      this.els.advance.textContent = `Finish “${stage}” now? Click again`;
      this.armTimer = setTimeout(() => this.disarm(), ARM_MS);
      return;
    }
    this.disarm();
    return this.write("POST", "/advance", {});
  }

  setDomain(stage, domain, form) {
    const body = {};
    for (const input of form.querySelectorAll("input")) {
      input.removeAttribute("aria-invalid");
      if (input.validity.badInput) {
        input.setAttribute("aria-invalid", "true");
        say(this.els.message, `${input.name}: not a number`, "error");
        return input.focus();
      }
      if (input.value !== input.defaultValue) body[input.name] = input.value.trim() === "" ? null : Number(input.value);
    }
    if (!Object.keys(body).length) {
      say(this.els.message, `Nothing to set: ${domain} in ${stage} is unchanged.`, "notice");
      return;
    }
    const path = `/stages/${seg(stage)}/domains/${seg(domain)}`;
    return this.write("PATCH", path, body, (err) => {
      const bad = err.body && err.body.field && form.querySelector(`input[name="${CSS.escape(err.body.field)}"]`);
      if (bad) bad.setAttribute("aria-invalid", "true");
    });
  }
}

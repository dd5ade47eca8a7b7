/**
 * The operator's page: sign in with a token, pick a run, watch its curves, steer its schedule.
 *
 * Every 2 s while signed in, one poll reads the runs list, the selected run's status, its new
 * metrics records (`since=<last step>`), its schedule and its new audit entries (`since=<last
 * version>`). A poll that overlaps the previous one is skipped; answers from before a sign-out or
 * a run switch are dropped (a generation counter).
 *
 * The role comes from GET /v1/whoami (api.js `fetchRole`): a viewer token gets a read-only page
 * up front; a 403 on any write also turns the page read-only.
 */

import { api, fetchRole, seg, session, setUnauthorizedHandler } from "./api.js";
import { AuditLog } from "./audit.js";
import { Curves } from "./curves.js";
import { say } from "./dom.js";
import { renderRuns, renderStatus } from "./runs.js";
import { SchedulePanel } from "./schedule.js";

const POLL_MS = 2000;
const METRICS_PAGE = 1000;
const $ = (id) => document.getElementById(id);

const state = { generation: 0, role: null, runId: null, timer: null, polling: false, again: false };

const curves = new Curves($("curves"));
const audit = new AuditLog($("audit"));
const schedule = new SchedulePanel(
  {
    stages: $("stages"),
    version: $("schedule-version"),
    message: $("schedule-message"),
    notice: $("schedule-notice"),
    pauseRun: $("pause-run"),
    advance: $("advance"),
    reason: $("reason"),
  },
  { changed: () => poll(), forbidden: () => setRole("viewer") },
);

function setRole(role) {
  state.role = role;
  const readOnly = role === "viewer";
  $("role-badge").textContent = readOnly ? "viewer: read-only" : role === "operator" ? "operator" : "role unknown";
  $("role-badge").className = `badge role-${role}`;
  $("readonly-note").hidden = !readOnly;
  $("schedule-hint").hidden = readOnly;
  schedule.setReadOnly(readOnly);
}

function showLogin(message) {
  $("app-view").hidden = true;
  $("session").hidden = true;
  $("login-view").hidden = false;
  say($("login-message"), message || "", "error");
  $("token").value = "";
  $("token").focus();
}

function signOut(message) {
  state.generation += 1;
  state.polling = false;
  clearTimeout(state.timer);
  session.clear();
  state.runId = null;
  state.role = null;
  curves.reset();
  audit.reset();
  schedule.setRun(null);
  renderStatus($("run-status"), null);
  $("runs").replaceChildren();
  showLogin(message);
}

async function signIn(token) {
  session.set(token);
  const gen = ++state.generation;
  say($("login-message"), "");
  try {
    await api("GET", "/v1/runs");
    const role = await fetchRole();
    if (gen !== state.generation) return;
    setRole(role);
  } catch (err) {
    if (err.status !== 401) signOut(`Cannot sign in: ${err.message}`);
    return;
  }
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("session").hidden = false;
  poll();
}

function select(runId) {
  if (runId === state.runId) return;
  state.generation += 1;
  state.runId = runId;
  history.replaceState(null, "", runId ? `#run=${encodeURIComponent(runId)}` : "#");
  $("run-title").textContent = runId ? `Run ${runId}` : "Run";
  curves.reset();
  audit.reset();
  schedule.setRun(runId);
  renderStatus($("run-status"), null);
  state.polling = false;
  poll();
}

function wantedRun(runs) {
  const ids = runs.map((r) => r.run_id);
  const fromHash = decodeURIComponent((location.hash.match(/^#run=(.+)$/) || [])[1] || "");
  if (state.runId && ids.includes(state.runId)) return state.runId;
  if (fromHash && ids.includes(fromHash)) return fromHash;
  return ids[0] || null;
}

async function pollRun(gen, runId, list) {
  const base = `/v1/runs/${seg(runId)}`;
  const status = list.runs.find((r) => r.run_id === runId);
  renderStatus($("run-status"), status);
  let added = false;
  for (let page = 0; page < 10; page += 1) {
    const m = await api("GET", `${base}/metrics?since=${curves.lastStep}&limit=${METRICS_PAGE}`);
    if (gen !== state.generation) return;
    added = curves.add(m.records) || added;
    if (m.records.length < METRICS_PAGE) break;
  }
  if (added) curves.render();
  const view = await api("GET", `${base}/schedule`);
  const entries = await api("GET", `${base}/audit?since=${audit.lastVersion}`);
  if (gen !== state.generation) return;
  schedule.offer(view);
  if (audit.add(entries.entries)) audit.render();
}

/** One poll now (or right after the one under way); the next one follows POLL_MS after it ends. */
async function poll() {
  if (state.polling) {
    state.again = true;
    return;
  }
  clearTimeout(state.timer);
  if (!session.token) return;
  state.polling = true;
  state.again = false;
  const gen = state.generation;
  try {
    const list = await api("GET", "/v1/runs");
    if (gen !== state.generation) return;
    const runId = wantedRun(list.runs);
    renderRuns($("runs"), list, runId, select);
    if (runId !== state.runId) {
      state.polling = false;
      return select(runId);
    }
    if (runId) await pollRun(gen, runId, list);
    say($("connection"), `Updated ${new Date().toLocaleTimeString()}`, "muted");
  } catch (err) {
    if (err.status !== 401 && gen === state.generation) say($("connection"), `Not updated: ${err.message}`, "error");
  } finally {
    if (gen === state.generation) {
      state.polling = false;
      if (session.token) state.timer = setTimeout(poll, state.again ? 0 : POLL_MS);
    }
  }
}

setUnauthorizedHandler((err) =>
  signOut(
    $("app-view").hidden
      ? `Sign-in refused: ${err.message}.`
      : `Signed out: the server refused the token (${err.message}). Sign in again.`,
  ),
);
$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  if (token) signIn(token);
});
$("logout").addEventListener("click", () => signOut("Signed out."));
renderStatus($("run-status"), null);
if (session.token) signIn(session.token);
else showLogin("");

// app.js: the teacher's dashboard. It draws the lab's topology from the
// topology stream (GET /api/topology?stream=1), applies every fault through
// the lab's fault API (POST /api/faults, the vocabulary of `mpim fault`),
// keeps a timeline from the lab's event stream (GET /api/events?stream=1)
// and the page's own actions, runs two chat panels, the live counters and
// the guided mode (GET /api/scenarios).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  topo: null, status: null, sides: {}, brush: null, selected: null,
  entries: [], scenarios: [], guide: { i: -1, step: -1 }, lastDisturbance: Date.now(),
  switching: false, lastMode: "",
};
const ledger = new Ledger(renderCounters);
const panels = [];
// The panels' password comes from the lab (GET /api/panels), which answers
// it to the teacher's own machine only; it is not in this page.
let PASSWORD = null;

// ---- the fault API ----------------------------------------------------

const cli = (spelled) => "mpim fault " + spelled;

// applyFault posts one fault in the vocabulary's spelling and records it
// in the timeline with the command that replays it from a terminal.
async function applyFault(spelled) {
  let r, j;
  try {
    r = await fetch("/api/faults", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ fault: spelled }) });
    j = await r.json();
  } catch (e) {
    j = { error: String(e) };
  }
  if (!r || !r.ok) {
    toast(spelled + ": " + j.error);
    addEntry({ kind: "error", source: "dashboard", detail: spelled + " refused: " + j.error, cli: cli(spelled) });
    return null;
  }
  claimOrAdd(j.applied);
  state.lastDisturbance = Date.now();
  refreshTopology();
  return j;
}

function partitionSpelling() {
  const groups = ["A", "B", "C"].map((s) => Object.keys(state.sides).filter((m) => state.sides[m] === s)).filter((g) => g.length);
  if (!groups.length) return "";
  const named = new Set(groups.flat());
  const rest = state.topo.members.map((m) => m.name).filter((m) => !named.has(m));
  if (groups.length === 1) {
    if (!rest.length) return "";
    groups.push(rest);
  } else {
    groups[groups.length - 1].push(...rest);
  }
  return "partition " + groups.map((g) => sortMembers(g).join(" ")).join(" / ");
}

function sortMembers(list) {
  const rank = (m) => (m[0] === "n" ? 0 : m[0] === "g" ? 1000 : 2000) + (parseInt(m.slice(1), 10) || 0);
  return list.slice().sort((a, b) => rank(a) - rank(b));
}

async function partition() {
  const spelled = partitionSpelling();
  if (!spelled) { toast("put members on at least one side first (1/2/3, then click members, or drag them onto a side)", true); return; }
  await applyFault(spelled);
}

function heal() { return applyFault("heal"); }

async function memberVerb(verb, name) {
  name = name || state.selected;
  if (!name) { toast("select a member first (click it)", true); return; }
  if (verb === "isolate") return applyFault("partition isolate:" + name);
  return applyFault(verb + " " + name);
}

// clickLink cuts an up link both ways (two oneway faults), or restores a
// link cut by oneway faults: heal, then apply again every other fault in
// force. A link cut by a partition is restored by heal.
async function clickLink(s, e) {
  const faults = state.topo.faults || [];
  if (e.shiftKey) return applyFault("delay " + s.a + " " + s.b + " ms=200");
  if (s.state === "up") {
    await applyFault("oneway " + s.a + " / " + s.b);
    await applyFault("oneway " + s.b + " / " + s.a);
    return;
  }
  const mine = (f) => {
    const w = f.split(/\s+/);
    if (w[0] === "oneway" && w.length === 4) return pairKey(w[1], w[3]) === pairKey(s.a, s.b);
    if (w[0] === "delay") { const ms = w.slice(1).filter((x) => !x.includes("=")); return ms.length === 2 && pairKey(ms[0], ms[1]) === pairKey(s.a, s.b); }
    return false;
  };
  if (!faults.some(mine)) { toast("this link is cut by a partition: press Heal (h) to restore it", true); return; }
  if (!(await heal())) return;
  for (const f of faults) if (!mine(f)) await applyFault(f);
}

// ---- topology, sides, selection ----------------------------------------

const view = new TopologyView($("#topology"), {
  click: (name) => {
    if (state.brush) { assign(name, state.sides[name] === state.brush ? null : state.brush); return; }
    state.selected = state.selected === name ? null : name;
    renderSelection();
    redraw();
  },
  drop: (name, side) => assign(name, side),
  link: clickLink,
});

function assign(name, side) {
  if (side) state.sides[name] = side; else delete state.sides[name];
  renderSides();
  redraw();
}

function setBrush(side) {
  state.brush = state.brush === side ? null : side;
  document.querySelectorAll(".brush").forEach((b) => b.classList.toggle("active", b.dataset.side === state.brush));
}

function renderSides() {
  for (const s of ["A", "B", "C"]) {
    const chips = document.querySelector("#side-" + s + " .chips");
    chips.innerHTML = "";
    for (const m of sortMembers(Object.keys(state.sides).filter((m) => state.sides[m] === s))) {
      const c = document.createElement("span");
      c.className = "chip"; c.textContent = m; c.title = "click to take " + m + " off this side";
      c.onclick = () => assign(m, null);
      chips.append(c);
    }
  }
}

function renderSelection() {
  $("#selected-name").textContent = state.selected ? state.selected + ":" : "select a member";
}

function redraw() { if (state.topo) view.update(state.topo, state.sides, state.selected); }

function onTopology(t) {
  const modeChanged = state.lastMode && state.lastMode !== t.mode;
  state.topo = t;
  state.lastMode = t.mode;
  redraw();
  const badge = $("#mode-badge");
  badge.textContent = t.mode.toUpperCase() + (t.switching ? " (restarting…)" : "");
  badge.className = "badge " + t.mode;
  $("#mode-switch").textContent = "switch to " + (t.mode === "cp" ? "AP" : "CP");
  const f = $("#faults");
  f.textContent = t.faults.length ? t.faults.join(" · ") : "no network faults";
  f.classList.toggle("none", !t.faults.length);
  if (!$("#tab-replicas").hidden) $("#replicas").innerHTML = replicaTable(t);
  for (const p of panels) p.setGateways(t.members);
  if (modeChanged && !state.switching) restartPanels();
  renderCounters();
}

async function refreshTopology() {
  try { onTopology(await (await fetch("/api/topology")).json()); } catch { /* the stream catches up */ }
}

// ---- timeline -------------------------------------------------------------

const pad = (n, w = 2) => String(n).padStart(w, "0");
function clock(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3); }
function rel(d) {
  const start = state.topo ? new Date(state.topo.started) : new Date(state.entries.length ? state.entries[0].time : Date.now());
  const s = Math.max(0, (d - start) / 1000);
  return "+" + Math.floor(s / 60) + ":" + pad(Math.floor(s % 60)) + "." + Math.floor((s * 10) % 10);
}

// labEventCLI is the command that replays a lab event, for the events that
// are faults.
function labEventCLI(ev) {
  switch (ev.kind) {
    case "fault": return cli(ev.detail);
    case "heal": return cli("heal");
    case "killed": return cli("kill " + ev.member);
    case "paused": return cli("pause " + ev.member);
    case "resumed": return cli("resume " + ev.member);
    default: return "";
  }
}

// echoOf is what a lab event would be as an action of this page.
function echoOf(ev) {
  return { fault: ev.detail, heal: "heal", killed: "kill " + ev.member, paused: "pause " + ev.member, resumed: "resume " + ev.member, started: "restart " + ev.member }[ev.kind];
}

// claimOrAdd records a fault this page applied: the lab's event for it
// often arrives before the API's answer, and then that line is marked as
// the page's action instead of adding a second line.
function claimOrAdd(applied) {
  const now = Date.now();
  const e = state.entries.find((x) => x.source === "lab" && x.echo === applied && !x.claimed && Math.abs(new Date(x.time) - now) < 15000);
  if (e) {
    e.claimed = true;
    e.source = "dashboard";
    const li = entryEls.get(e);
    if (li) li.querySelector(".k").textContent = e.kind + " ◀ dashboard";
    return;
  }
  addEntry({ kind: "action", source: "dashboard", detail: applied, cli: cli(applied), applied });
}

// onLabEvent adds a lab event, unless it is the echo of an action this
// page took a moment ago (then the action's line stands for both).
function onLabEvent(ev) {
  // A reconnecting EventSource gets the log again: skip what was shown.
  if (ev.seq <= (state.maxSeq || 0)) return;
  state.maxSeq = ev.seq;
  const echo = echoOf(ev);
  const t = new Date(ev.time);
  if (["fault", "heal", "killed", "paused", "resumed", "mode"].includes(ev.kind) || (ev.kind === "started" && state.topo)) state.lastDisturbance = Date.now();
  if (echo) {
    const a = state.entries.find((e) => e.source === "dashboard" && e.applied === echo && !e.echoed && Math.abs(new Date(e.time) - t) < 15000);
    if (a) { a.echoed = ev.seq; return; }
  }
  addEntry({ seq: ev.seq, time: ev.time, kind: ev.kind, member: ev.member, source: "lab", echo,
    detail: (ev.member && ev.kind !== "fault" && ev.kind !== "heal" ? ev.member + " " : "") + (ev.detail || "") + (ev.pid ? " (pid " + ev.pid + ")" : ""),
    cli: labEventCLI(ev) });
  if (ev.kind === "mode" && !state.switching) restartPanels();
}

const entryEls = new WeakMap();
function addEntry(e) {
  e.time = e.time || new Date().toISOString();
  state.entries.push(e);
  if (state.entries.length > 5000) state.entries.splice(0, 1000);
  const d = new Date(e.time);
  const li = document.createElement("li");
  li.dataset.kind = e.kind;
  li.innerHTML = "<span class=t></span><span class=k></span><span class=d></span> ";
  li.querySelector(".t").textContent = clock(d) + " " + rel(d);
  li.querySelector(".k").textContent = e.kind;
  li.querySelector(".k").classList.add("k-" + e.kind);
  li.querySelector(".d").textContent = e.detail || "";
  if (e.cli) { const c = document.createElement("code"); c.textContent = "$ " + e.cli; li.append(c); }
  entryEls.set(e, li);
  const tl = $("#timeline");
  tl.prepend(li);
  while (tl.children.length > 400) tl.lastChild.remove();
}

function download() {
  const body = JSON.stringify({ exported: new Date().toISOString(), lab: state.status, entries: state.entries.map((e) => Object.assign({ relative_s: state.topo ? (new Date(e.time) - new Date(state.topo.started)) / 1000 : null }, e)) }, null, 2);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([body], { type: "application/json" }));
  a.download = "mpim-timeline-" + new Date().toISOString().replace(/[:.]/g, "-") + ".json";
  document.body.append(a); a.click(); a.remove();
}

// ---- counters -----------------------------------------------------------

let divergent = 0;
async function pollReplicas() {
  try {
    const reps = await (await fetch("/api/replicas")).json();
    const convs = new Map();
    let nodes = 0;
    for (const r of Object.values(reps)) {
      if (r.error) continue;
      nodes++;
      for (const [c, d] of Object.entries(r.convs || {})) (convs.get(c) || convs.set(c, []).get(c)).push(d.digest);
    }
    divergent = 0;
    for (const ds of convs.values()) if (ds.length < nodes || new Set(ds).size > 1) divergent++;
  } catch { /* keep the last figure */ }
  renderCounters();
}

// lostAfterHeal counts acknowledged messages that a panel still does not
// show once the network is healed, every member runs and 5 s have passed;
// null while that does not hold.
function lostAfterHeal() {
  const t = state.topo;
  if (!t || t.faults.length || t.members.some((m) => m.state !== "running" && m.state !== "external") || Date.now() - state.lastDisturbance < 5000) return null;
  const lost = new Set();
  for (const p of panels) {
    const acked = ledger.acked.get(p.conv);
    if (!acked || p.root.dataset.ready !== "1") continue;
    const have = new Set(p.servedIds());
    for (const id of acked.keys()) if (!have.has(id)) lost.add(id);
  }
  return lost.size;
}

function renderCounters() {
  const c = ledger.counts;
  $("#c-accepted").textContent = c.accepted;
  $("#c-refused").textContent = c.refused;
  $("#c-unknown").textContent = c.unknown;
  $("#c-stale").textContent = c.stale;
  $("#c-stale").title = "linearizable reads that missed a message acknowledged before the read began (CP: never)";
  $("#c-stale-local").textContent = c.staleLocal;
  $("#c-stale-local").title = "local reads that missed a message acknowledged before the read began (expected in both modes)";
  $("#c-divergent").textContent = divergent;
  $("#c-resyncs").textContent = c.resyncs;
  const lost = lostAfterHeal();
  $("#c-lost").textContent = lost === null ? "–" : lost;
  $("#c-lost").title = "measured 5 s after heal, with every member running";
}

// ---- chat panels ----------------------------------------------------------

function makePanels() {
  const gws = () => (state.topo ? state.topo.members.filter((m) => m.kind === "gateway") : []);
  const names = gws().map((g) => g.name);
  const specs = [
    { user: "alice", peer: "bob", gateway: names[0] || "g1" },
    { user: "bob", peer: "alice", gateway: names[names.length - 1] || "g1" },
  ];
  for (const s of specs) {
    panels.push(new ChatPanel({
      root: document.querySelector('.chat[data-panel="' + s.user + '"]'), user: s.user, peer: s.peer, password: PASSWORD,
      group: "lab", gateway: s.gateway, ledger, gateways: gws,
      onEvent: (kind, text) => addEntry({ kind, source: "dashboard", detail: text }),
    }));
  }
  for (const p of panels) { p.setGateways(state.topo.members); p.start(); }
}

function restartPanels() {
  ledger.reset();
  for (const p of panels) p.start(true);
}

// ---- mode switch ----------------------------------------------------------

function askMode() {
  const other = state.topo && state.topo.mode === "cp" ? "ap" : "cp";
  $("#mode-title").textContent = "Restart the lab in " + other.toUpperCase() + " mode?";
  $("#mode-dialog").hidden = false;
  $("#mode-confirm").focus();
}

async function switchMode() {
  $("#mode-dialog").hidden = true;
  const other = state.topo.mode === "cp" ? "ap" : "cp";
  state.switching = true;
  toast("restarting every member in " + other.toUpperCase() + " mode on fresh data…", true, 60000);
  addEntry({ kind: "action", source: "dashboard", detail: "switch to " + other.toUpperCase() + " (POST /api/mode)", cli: "mpim lab up --mode " + other });
  try {
    const r = await fetch("/api/mode", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ mode: other }) });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error);
    toast("now in " + other.toUpperCase() + " mode", true, 2500);
  } catch (e) {
    toast("mode switch failed: " + e.message);
  } finally {
    state.switching = false;
    state.sides = {}; renderSides();
    await refreshTopology();
    restartPanels();
  }
}

// ---- guided mode -----------------------------------------------------------

function renderGuide() {
  const g = $("#guide");
  const esc = (s) => String(s || "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  let h = "<div class=steps>";
  state.scenarios.forEach((s, i) => {
    h += "<button data-scenario=" + i + " class='" + (i === state.guide.i ? "active" : "") + (s.fits ? "" : " nofit") + "' title=\"" + esc(s.fits ? s.description : s.note) + "\">" + esc(s.name) + "</button>";
  });
  h += "</div>";
  const s = state.scenarios[state.guide.i];
  if (!s) {
    h += "<p>Pick a scenario: the guide steps through its faults with what to say and what to watch. <kbd>←</kbd> <kbd>→</kbd> move, <kbd>a</kbd> applies the step.</p>";
  } else {
    const k = state.guide.step;
    h += "<div><b>" + esc(s.name) + "</b> — " + (k < 0 ? "introduction" : "step " + (k + 1) + " of " + s.steps.length + " (at " + s.steps[k].at_s + " s in the scenario)") + (s.fits ? "" : " <span class=nofit>" + esc(s.note) + "</span>") + "</div>";
    if (k < 0) {
      h += "<div class=caption>" + esc(s.description) + "</div><div class=observe>Cluster: " + s.cluster.Nodes + " nodes, " + s.cluster.Gateways + " gateways. Type in both chat panels, then go to the first step.</div>";
    } else {
      const st = s.steps[k];
      h += "<div class=caption id=guide-caption>" + esc(st.caption || st.do) + "</div>";
      h += "<div class=do><code>$ " + esc(cli(st.do)) + "</code></div>";
      h += "<div class=observe id=guide-observe>" + esc(st.observe || "") + "</div>";
    }
    h += "<p><button id=guide-prev>← previous</button> <button id=guide-next>next →</button> " + (k >= 0 ? "<button id=guide-apply class=heal>apply this step (a)</button>" : "") + "</p>";
  }
  g.innerHTML = h;
  g.querySelectorAll("[data-scenario]").forEach((b) => (b.onclick = () => { state.guide = { i: +b.dataset.scenario, step: -1 }; renderGuide(); }));
  const on = (id, fn) => { const b = document.getElementById(id); if (b) b.onclick = fn; };
  on("guide-prev", () => guideMove(-1));
  on("guide-next", () => guideMove(1));
  on("guide-apply", guideApply);
}

function guideMove(d) {
  const s = state.scenarios[state.guide.i];
  if (!s) return;
  state.guide.step = Math.max(-1, Math.min(s.steps.length - 1, state.guide.step + d));
  showTab("guide");
  renderGuide();
}

function guideApply() {
  const s = state.scenarios[state.guide.i];
  if (!s || state.guide.step < 0) return;
  return applyFault(s.steps[state.guide.step].do);
}

// ---- chrome: tabs, toast, help, keys ------------------------------------

function showTab(name) {
  document.querySelectorAll("#tabs nav [data-tab]").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== "tab-" + name));
  if (name === "replicas" && state.topo) $("#replicas").innerHTML = replicaTable(state.topo);
  if (name === "guide") renderGuide();
  document.body.classList.toggle("guide-open", name === "guide");
}

let toastTimer;
function toast(text, info, ms = 5000) {
  const t = $("#toast");
  t.textContent = text; t.className = info ? "info" : ""; t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), ms);
}

const keys = {
  "?": () => ($("#overlay").hidden = !$("#overlay").hidden),
  "1": () => setBrush("A"), "2": () => setBrush("B"), "3": () => setBrush("C"), "0": () => setBrush(null),
  p: partition, c: () => { state.sides = {}; renderSides(); redraw(); }, h: heal,
  k: () => memberVerb("kill"), r: () => memberVerb("restart"), z: () => memberVerb("pause"), u: () => memberVerb("resume"), i: () => memberVerb("isolate"),
  g: () => showTab($("#tab-guide").hidden ? "guide" : "timeline"),
  ArrowRight: () => guideMove(1), n: () => guideMove(1), ArrowLeft: () => guideMove(-1), b: () => guideMove(-1), a: guideApply,
  d: download, m: askMode,
  t: () => panels[0] && panels[0].input.focus(), y: () => panels[1] && panels[1].input.focus(),
};

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") {
    if (document.activeElement) document.activeElement.blur();
    $("#overlay").hidden = true; $("#mode-dialog").hidden = true; $("#popover").hidden = true;
    state.brush = null; setBrush(null); state.selected = null; renderSelection(); redraw();
    return;
  }
  if (e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
  const fn = keys[e.key];
  if (fn) { e.preventDefault(); fn(); }
});

function wire() {
  document.querySelectorAll(".brush").forEach((b) => (b.onclick = () => setBrush(b.dataset.side)));
  $("#apply-partition").onclick = partition;
  $("#clear-sides").onclick = keys.c;
  $("#heal").onclick = heal;
  document.querySelectorAll("#member-actions [data-verb]").forEach((b) => (b.onclick = () => memberVerb(b.dataset.verb)));
  document.querySelectorAll("#tabs nav [data-tab]").forEach((b) => (b.onclick = () => showTab(b.dataset.tab)));
  $("#download").onclick = download;
  $("#help-button").onclick = keys["?"];
  $("#overlay").onclick = () => ($("#overlay").hidden = true);
  $("#mode-switch").onclick = askMode;
  $("#mode-confirm").onclick = switchMode;
  $("#mode-cancel").onclick = () => ($("#mode-dialog").hidden = true);
}

async function main() {
  wire();
  state.status = await (await fetch("/api/status")).json();
  if (state.status.student_urls && state.status.student_urls.length) $("#student-url").textContent = "students: " + state.status.student_urls[0];
  await refreshTopology();
  state.scenarios = await (await fetch("/api/scenarios")).json();
  const creds = await fetch("/api/panels");
  if (creds.ok) {
    PASSWORD = (await creds.json()).password;
    makePanels();
  } else {
    // Not the teacher's machine: the panels are the teacher's.
    for (const root of document.querySelectorAll(".chat[data-panel]")) {
      root.textContent = "The chat panels run on the teacher's machine; students chat from the student page (/student).";
    }
  }
  const topo = new EventSource("/api/topology?stream=1&interval_ms=1000");
  topo.addEventListener("topology", (m) => onTopology(JSON.parse(m.data)));
  const events = new EventSource("/api/events?stream=1");
  for (const k of ["started", "killed", "paused", "resumed", "exited", "stopped", "fault", "heal", "leader", "mode"]) {
    events.addEventListener(k, (m) => onLabEvent(JSON.parse(m.data)));
  }
  setInterval(pollReplicas, 3000);
  setInterval(renderCounters, 1000);
  pollReplicas();
  document.body.dataset.ready = "1";
}

main().catch((e) => toast("dashboard failed to start: " + e));

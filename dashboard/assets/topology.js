// topology.js: draws the cluster as an SVG graph (nodes on top, gateways
// below, Redis between them) with every link in its state, and turns
// pointer input into the palette's gestures: click a member, drag it onto
// a side, click a link. Pointer events, so that mouse, touch and automated
// browsers all work.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs = {}) => {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

// pairKey names an unordered pair of members.
const pairKey = (a, b) => (a < b ? a + "|" + b : b + "|" + a);

// linkStates folds the lab's directional links (GET /api/links) into one
// state per pair of members: up, cut (both directions held), oneway (one
// held; blocked names the direction), delayed (ms), lossy (a loss fault).
function linkStates(links, faults) {
  const out = new Map();
  for (const l of links) {
    const k = pairKey(l.from, l.to);
    const s = out.get(k) || { a: l.from < l.to ? l.from : l.to, b: l.from < l.to ? l.to : l.from, held: new Set(), delay: 0, conns: 0 };
    if (l.held) s.held.add(l.from + ">" + l.to);
    if (l.held_back) s.held.add(l.to + ">" + l.from);
    s.delay = Math.max(s.delay, l.delay_ms || 0, l.delay_back_ms || 0);
    s.conns += l.conns || 0;
    out.set(k, s);
  }
  const lossy = new Set();
  for (const f of faults) {
    const w = f.split(/\s+/);
    if (w[0] === "loss") {
      const ms = w.slice(1).filter((x) => !x.includes("="));
      if (ms.length === 2) lossy.add(pairKey(ms[0], ms[1]));
      else for (const [k, s] of out) if (s.a === ms[0] || s.b === ms[0]) lossy.add(k);
    }
  }
  for (const [k, s] of out) {
    const ab = s.held.has(s.a + ">" + s.b), ba = s.held.has(s.b + ">" + s.a);
    s.state = ab && ba ? "cut" : ab || ba ? "oneway" : lossy.has(k) ? "lossy" : s.delay > 0 ? "delayed" : "up";
    if (s.state === "oneway") s.blocked = ab ? [s.a, s.b] : [s.b, s.a];
  }
  return out;
}

class TopologyView {
  // handlers: click(member), drop(member, side), link(state, event).
  constructor(svg, handlers) {
    this.svg = svg; this.h = handlers; this.pos = new Map(); this.drag = null;
    this.W = 1000; this.H = 520;
    window.addEventListener("pointermove", (e) => this.move(e));
    window.addEventListener("pointerup", (e) => this.up(e));
  }

  // layout places nodes on a row at the top, gateway gI under its first
  // node, and Redis in the middle.
  layout(members) {
    const nodes = members.filter((m) => m.kind === "node"), gws = members.filter((m) => m.kind === "gateway");
    const row = (list, y) => list.forEach((m, i) => this.pos.set(m.name, { x: (this.W * (i + 0.5)) / list.length, y }));
    row(nodes, 85);
    row(gws, 430);
    this.pos.set("redis", { x: this.W / 2, y: 262 });
  }

  update(topo, sides, selected) {
    this.topo = topo;
    this.layout(topo.members);
    const svg = this.svg;
    svg.innerHTML = "";
    const states = linkStates(topo.links, topo.faults || []);
    this.states = states;
    const firstNode = (g) => {
      const nodes = topo.members.filter((m) => m.kind === "node");
      const i = parseInt(g.slice(1), 10) - 1;
      return nodes.length ? nodes[i % nodes.length].name : "";
    };
    const linkLayer = svgEl("g"), memberLayer = svgEl("g");
    svg.append(linkLayer, memberLayer);
    for (const [k, s] of states) {
      const p = this.pos.get(s.a), q = this.pos.get(s.b);
      if (!p || !q) continue;
      const gw = s.a.startsWith("g") ? s.a : s.b.startsWith("g") ? s.b : "";
      const other = gw === s.a ? s.b : s.a;
      const minor = gw && other.startsWith("n") && firstNode(gw) !== other;
      const line = svgEl("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: "link " + s.state + (minor && s.state === "up" ? " minor" : ""), "data-link": k, "data-state": s.state });
      const hit = svgEl("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: "link-hit", "data-link": k });
      const title = svgEl("title");
      title.textContent = s.a + " – " + s.b + ": " + s.state + (s.blocked ? " (" + s.blocked[0] + " → " + s.blocked[1] + " held)" : "") + (s.delay ? ", +" + s.delay + " ms" : "") + (minor ? " (failover path)" : "");
      hit.append(title);
      hit.addEventListener("click", (e) => this.h.link(s, e));
      linkLayer.append(line, hit);
      let label = "";
      if (s.state === "oneway") label = s.blocked[0] + "⇸" + s.blocked[1];
      else if (s.state === "delayed") label = "+" + s.delay + "ms";
      else if (s.state === "cut") label = "✂";
      if (label) {
        const t = svgEl("text", { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 - 6, class: "link-label" });
        t.textContent = label;
        linkLayer.append(t);
      }
    }
    const leaders = leaderSummary(topo);
    for (const m of topo.members) {
      const p = this.pos.get(m.name);
      if (!p) continue;
      const g = svgEl("g", { class: "member " + m.kind + " " + m.state + (m.name === selected ? " selected" : "") + (leaders.lead[m.name] ? " leader" : ""),
        "data-member": m.name, "data-state": m.state, transform: "translate(" + p.x + "," + p.y + ")" });
      let shape;
      if (m.kind === "node") shape = svgEl("circle", { r: 48, class: "shape" });
      else if (m.kind === "gateway") shape = svgEl("rect", { x: -52, y: -32, width: 104, height: 64, rx: 14, class: "shape" });
      else shape = svgEl("rect", { x: -60, y: -30, width: 120, height: 60, rx: 30, class: "shape" });
      g.append(shape);
      const side = sides[m.name];
      if (side) g.append(svgEl("circle", { r: m.kind === "node" ? 58 : 66, class: "ring", stroke: "var(--" + side + ")" }));
      const name = svgEl("text", { y: 9 });
      name.textContent = m.name + (leaders.lead[m.name] ? " ★" : "");
      g.append(name);
      const sub = svgEl("text", { y: m.kind === "gateway" ? 56 : m.kind === "node" ? -60 : 52, class: "sub" });
      sub.textContent = memberNote(m, topo, leaders);
      g.append(sub);
      const title = svgEl("title");
      title.textContent = m.name + ": " + m.state + (m.pid ? " (pid " + m.pid + ")" : "");
      g.append(title);
      g.addEventListener("pointerdown", (e) => this.down(e, m.name));
      memberLayer.append(g);
    }
  }

  down(e, name) {
    e.preventDefault();
    this.drag = { name, x: e.clientX, y: e.clientY, moved: false, ghost: null };
  }

  move(e) {
    const d = this.drag;
    if (!d) return;
    if (!d.moved && Math.hypot(e.clientX - d.x, e.clientY - d.y) < 8) return;
    if (!d.moved) {
      d.moved = true;
      d.ghost = document.createElement("div");
      d.ghost.className = "drag-ghost";
      d.ghost.textContent = d.name + " → drop on a side";
      document.body.append(d.ghost);
    }
    d.ghost.style.left = e.clientX + 12 + "px";
    d.ghost.style.top = e.clientY + 12 + "px";
    document.querySelectorAll(".side").forEach((s) => s.classList.remove("drop"));
    const zone = this.zoneAt(e);
    if (zone) zone.classList.add("drop");
  }

  zoneAt(e) {
    const under = document.elementFromPoint(e.clientX, e.clientY);
    return under && under.closest ? under.closest(".side") : null;
  }

  up(e) {
    const d = this.drag;
    if (!d) return;
    this.drag = null;
    document.querySelectorAll(".side").forEach((s) => s.classList.remove("drop"));
    if (!d.moved) { this.h.click(d.name); return; }
    d.ghost.remove();
    const zone = this.zoneAt(e);
    if (zone) this.h.drop(d.name, zone.dataset.side);
  }
}

// leaderSummary: per node, the shards it leads and its highest term, from
// each node's own Raft view.
function leaderSummary(topo) {
  const lead = {}, term = {};
  for (const [node, ns] of Object.entries(topo.nodes || {})) {
    for (const s of ns.shards || []) {
      term[node] = Math.max(term[node] || 0, s.term || 0);
      if (s.state === "Leader") (lead[node] = lead[node] || []).push(s.shard);
    }
  }
  return { lead, term };
}

function memberNote(m, topo, leaders) {
  if (m.state !== "running") return m.state;
  if (m.kind !== "node") return m.kind === "redis" ? "" : "";
  const ns = (topo.nodes || {})[m.name];
  if (!ns || ns.error) return ns && ns.error ? "?" : "";
  if (topo.mode === "ap" && ns.ap) {
    const lag = Math.max(0, ...Object.values(ns.ap.lag_ms || {}));
    return "lag " + fmtMS(lag) + " · ~" + ns.ap.tentative + (ns.ap.outbox ? " · out " + ns.ap.outbox : "");
  }
  const l = leaders.lead[m.name];
  const t = leaders.term[m.name] || 0;
  const candidate = (ns.shards || []).some((s) => s.state === "Candidate");
  return (l ? "leads " + (l.length === (ns.shards || []).length ? "all" : l.join(",")) : candidate ? "candidate" : "follower") + " · t" + t;
}

function fmtMS(ms) { return ms >= 10000 ? Math.round(ms / 1000) + "s" : ms >= 1000 ? (ms / 1000).toFixed(1) + "s" : ms + "ms"; }

// replicaTable renders the per-replica view: CP, a row per node and a
// column per shard (state, term, commit/applied); AP, a row per node with
// outbox, lag per peer and tentative messages.
function replicaTable(topo) {
  const nodes = Object.keys(topo.nodes || {}).sort((a, b) => parseInt(a.slice(1)) - parseInt(b.slice(1)));
  const esc = (s) => String(s).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
  if (topo.mode === "ap") {
    let h = "<table class=grid><tr><th>node</th><th>outbox</th><th>pending</th><th>lag per peer</th><th>stable lag</th><th>tentative</th><th>applied</th></tr>";
    for (const n of nodes) {
      const ns = topo.nodes[n];
      if (ns.error || !ns.ap) { h += "<tr><th>" + n + "</th><td colspan=6>" + esc(ns.error || "no AP status") + "</td></tr>"; continue; }
      const a = ns.ap;
      const lags = Object.entries(a.lag_ms || {}).sort().map(([p, v]) => p + " " + fmtMS(v)).join(", ");
      h += "<tr><th>" + n + "</th><td>" + a.outbox + "</td><td>" + a.pending + "</td><td>" + lags + "</td><td>" + fmtMS(a.stable_lag_ms) + "</td><td>" + a.tentative + (a.tentative_capped ? "+" : "") + "</td><td>" + a.applied + "</td></tr>";
    }
    return h + "</table><p class=hint>lag: how far the last clock heard from a peer trails this node's; messages newer than the stable clock are tentative.</p>";
  }
  let shards = 0;
  for (const n of nodes) shards = Math.max(shards, (topo.nodes[n].shards || []).length);
  let h = "<table class=grid><tr><th>node</th>";
  for (let s = 0; s < shards; s++) h += "<th>shard " + s + "</th>";
  h += "</tr>";
  for (const n of nodes) {
    const ns = topo.nodes[n];
    h += "<tr><th>" + n + "</th>";
    if (ns.error) { h += "<td colspan=" + shards + ">" + esc(ns.error) + "</td></tr>"; continue; }
    for (const s of ns.shards || []) {
      const st = s.state === "Leader" ? "L" : s.state === "Candidate" ? "C" : "F";
      h += "<td class=" + st + " title='" + s.state + ", leader " + esc(s.leader || "?") + "'>" + st + " t" + s.term + " " + s.commit_index + "/" + s.applied_index + "</td>";
    }
    h += "</tr>";
  }
  return h + "</table><p class=hint>L leader, F follower, C candidate · t term · commit index / applied index</p>";
}

// chat.js: a chat panel that speaks the client wire protocol
// (docs/protocol.md) to one gateway over a WebSocket, and marks what
// happened to each send: accepted, refused (unavailable: guaranteed not
// applied), unknown (timeout: maybe applied), tentative (AP: its position
// can still change) and resynced (AP: the gateway said positions changed,
// so the panel fetched the conversation again).
"use strict";

// gatewayURL is the WebSocket address a page uses for gateway m: the
// gateway itself when the page is on this machine, else the lab's relay
// (the gateways listen on loopback only).
function gatewayURL(m) {
  const h = location.hostname;
  if (h === "127.0.0.1" || h === "localhost" || h === "[::1]") return m.ws;
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/gw/" + m.name + "/ws";
}

// Wire is one WebSocket connection: requests matched to replies by id,
// pushes handed to onPush.
class Wire {
  constructor(url, onPush, onClose) {
    this.url = url; this.onPush = onPush; this.onClose = onClose;
    this.next = 1; this.waiting = new Map(); this.ws = null;
  }
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let opened = false;
      ws.onopen = () => { opened = true; resolve(); };
      ws.onerror = () => { if (!opened) reject({ code: "unreachable", message: "cannot connect to " + this.url }); };
      ws.onclose = () => {
        for (const [, w] of this.waiting) w.reject({ code: "timeout", message: "connection closed before the reply" });
        this.waiting.clear();
        if (opened) this.onClose();
      };
      ws.onmessage = (ev) => {
        let f;
        try { f = JSON.parse(ev.data); } catch { return; }
        if (f.push) { this.onPush(f); return; }
        const w = this.waiting.get(f.id);
        if (!w) return;
        this.waiting.delete(f.id);
        clearTimeout(w.timer);
        if (f.ok) w.resolve(f); else w.reject(f.error || { code: "internal", message: "bad reply" });
      };
    });
  }
  // call sends one request; a reply that does not come within timeoutMs
  // counts as timeout (outcome unknown), like the gateway's own timeout.
  call(op, fields, timeoutMs = 12000) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject({ code: "unavailable", message: "not connected to the gateway" });
        return;
      }
      const id = String(this.next++);
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject({ code: "timeout", message: "no reply within " + timeoutMs / 1000 + " s" });
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify(Object.assign({ id, op }, fields)));
    });
  }
  // close settles every request still waiting (as unknown: it may have
  // been applied), so that no caller waits forever on a replaced socket.
  close() {
    if (this.ws) { this.ws.onclose = null; this.ws.close(); }
    for (const [, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject({ code: "timeout", message: "connection replaced before the reply" });
    }
    this.waiting.clear();
  }
}

// Ledger is what the page knows across its panels: every acknowledged
// message (to tell a stale read) and the counters.
class Ledger {
  constructor(onChange) {
    this.acked = new Map(); // conv -> Map(id -> time acknowledged)
    this.counts = { accepted: 0, refused: 0, unknown: 0, stale: 0, staleLocal: 0, resyncs: 0 };
    this.onChange = onChange || (() => {});
  }
  ack(conv, id) {
    if (!this.acked.has(conv)) this.acked.set(conv, new Map());
    if (!this.acked.get(conv).has(id)) this.acked.get(conv).set(id, Date.now());
  }
  count(what) { this.counts[what]++; this.onChange(); }
  // checkRead counts a read that began at began and missed a message
  // acknowledged before it began: stale.
  checkRead(conv, began, messages, local) {
    const acked = this.acked.get(conv);
    if (!acked) return false;
    const have = new Set(messages.map((m) => m.id));
    for (const [id, t] of acked) {
      if (t < began && !have.has(id)) { this.count(local ? "staleLocal" : "stale"); return true; }
    }
    return false;
  }
  reset() { this.acked.clear(); for (const k in this.counts) this.counts[k] = 0; this.onChange(); }
}

const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

// ChatPanel is one user's chat: a gateway picker, the conversations (the
// shared group and a DM with the peer), the message list and a text box.
class ChatPanel {
  // opts: root, user, password, peer (or ""), group, gateway (name),
  // gateways() -> members, ledger, onEvent(kind, text), device.
  constructor(opts) {
    Object.assign(this, opts);
    this.device = opts.device || "dashboard";
    this.wire = null; this.token = null; this.mode = ""; this.node = "";
    this.conv = "g:" + this.group;
    this.server = new Map(); // conv -> [message] as last read
    this.local = [];          // this panel's sends: {cmid, conv, text, status, t, id, seq}
    this.resynced = new Set();
    this.generation = 0; this.fetching = false; this.fetchAgain = false;
    this.build();
    this.poll = setInterval(() => this.refetch(), 2000);
  }
  get dm() { const [a, b] = [this.user, this.peer].sort(); return "dm:" + a + ":" + b; }

  build() {
    const r = this.root;
    r.innerHTML = "";
    r.dataset.ready = "0";
    this.gwSelect = el("select", { title: "the gateway this user talks to", onchange: () => { this.gateway = this.gwSelect.value; this.start(); } });
    this.connEl = el("span", { class: "conn" }, "…");
    this.convBtns = el("span", { class: "convs" });
    this.noteEl = el("div", { class: "note" });
    this.list = el("ol", { class: "messages" });
    this.input = el("input", { class: "compose", placeholder: "message as " + this.user + " (Enter)", maxlength: "300" });
    const form = el("form", { onsubmit: (e) => { e.preventDefault(); this.sendText(); } }, this.input, el("button", { type: "submit" }, "Send"));
    r.append(el("div", { class: "head" }, el("span", { class: "who" }, this.user), el("span", {}, "via"), this.gwSelect, this.connEl), this.convBtns, this.noteEl, this.list, form);
    this.renderConvs();
  }

  renderConvs() {
    this.convBtns.innerHTML = "";
    const convs = [["g:" + this.group, "#" + this.group]];
    if (this.peer) convs.push([this.dm, "DM " + this.peer]);
    for (const [c, label] of convs) {
      this.convBtns.append(el("button", { type: "button", class: c === this.conv ? "active" : "", "data-conv": c,
        onclick: () => { this.conv = c; this.renderConvs(); this.render(); this.refetch(); } }, label));
    }
  }

  setGateways(members) {
    const names = members.filter((m) => m.kind === "gateway").map((m) => m.name);
    const cur = Array.from(this.gwSelect.options).map((o) => o.value).join(",");
    if (cur === names.join(",")) return;
    this.gwSelect.innerHTML = "";
    for (const n of names) this.gwSelect.append(el("option", { value: n }, n));
    this.gwSelect.value = this.gateway;
  }

  status(text, down) { this.connEl.textContent = text; this.connEl.classList.toggle("down", !!down); }
  note(text) { this.noteEl.textContent = text || ""; }

  // start (re)connects to the panel's gateway and sets the user up:
  // register (a conflict means it exists), login or resume, join the group.
  async start(fresh) {
    const gen = ++this.generation;
    if (this.wire) this.wire.close();
    if (fresh) { this.token = null; this.server.clear(); this.local = []; this.resynced.clear(); this.render(); }
    this.root.dataset.ready = "0";
    const m = this.gateways().find((g) => g.name === this.gateway);
    if (!m) { this.status("no gateway " + this.gateway, true); return; }
    const wire = new Wire(gatewayURL(m), (p) => this.onPush(p), () => { if (gen === this.generation) this.reconnect(gen); });
    this.wire = wire;
    this.status("connecting to " + m.name + "…");
    try {
      await wire.open();
      let rep = null;
      if (this.token) rep = await wire.call("resume", { token: this.token, device: this.device }).catch(() => null);
      if (!rep) {
        await wire.call("register", { user: this.user, password: this.password }).catch((e) => { if (e.code !== "conflict") throw e; });
        rep = await wire.call("login", { user: this.user, password: this.password, device: this.device });
      }
      if (gen !== this.generation) return;
      this.token = rep.token; this.mode = rep.mode; this.node = rep.node;
      await wire.call("group_create", { group: this.group }).catch((e) => {
        if (e.code !== "conflict") throw e;
        return wire.call("group_join", { group: this.group }).catch(() => {});
      });
      this.root.dataset.mode = this.mode;
      this.root.dataset.ready = "1";
      this.attempts = 0;
      this.status(m.name + " → " + rep.node + " (" + rep.mode.toUpperCase() + ")");
      this.refetch();
    } catch (e) {
      if (gen !== this.generation) return;
      this.status("not connected: " + (e.code || "") + " " + (e.message || ""), true);
      wire.close();
      this.reconnect(gen);
    }
  }

  // reconnect retries the gateway with a growing pause, at most 300 times
  // (then the gateway picker or a mode switch starts again).
  reconnect(gen) {
    this.root.dataset.ready = "0";
    this.attempts = (this.attempts || 0) + 1;
    if (this.attempts > 300) { this.status("gone: pick a gateway to retry", true); return; }
    this.status("disconnected from " + this.gateway + ": retrying…", true);
    setTimeout(() => { if (gen === this.generation) this.start(); }, Math.min(3000, 250 * this.attempts));
  }

  stop() { this.generation++; clearInterval(this.poll); if (this.wire) this.wire.close(); }

  onPush(p) {
    if (p.push === "message") {
      const m = p.message;
      const list = this.server.get(m.conv) || [];
      const i = list.findIndex((x) => x.id === m.id);
      if (i >= 0) list[i] = m; else list.push(m);
      list.sort((a, b) => a.seq - b.seq);
      this.server.set(m.conv, list);
      if (m.conv === this.conv) this.render();
      this.refetchSoon();
    } else if (p.push === "resync") {
      this.ledger.count("resyncs");
      for (const m of this.server.get(p.conv) || []) if (m.seq >= p.from_seq) this.resynced.add(m.id);
      this.onEvent("resync", this.user + ": resync " + p.conv + " from seq " + p.from_seq + " (positions changed: refetching)");
      this.refetchSoon();
    } else if (p.push === "kicked") {
      this.onEvent("error", this.user + " kicked: " + p.reason + (p.message ? " (" + p.message + ")" : ""));
    }
  }

  refetchSoon() { clearTimeout(this.soon); this.soon = setTimeout(() => this.refetch(), 150); }

  // refetch reads the shown conversation again: linearizable in CP (and,
  // when that is refused, a local read, marked so), local in AP.
  async refetch() {
    if (!this.wire || this.root.dataset.ready !== "1") return;
    if (this.fetching) { this.fetchAgain = true; return; }
    this.fetching = true;
    const conv = this.conv, began = Date.now();
    try {
      let rep, local = this.mode === "ap";
      try {
        rep = await this.wire.call("history", { conv, limit: 1000, read: local ? "local" : "linearizable" }, 8000);
        this.note("");
      } catch (e) {
        if (e.code === "not_found" || e.code === "forbidden") { this.server.set(conv, []); this.render(); return; }
        if (local) throw e;
        local = true;
        rep = await this.wire.call("history", { conv, limit: 1000, read: "local" }, 8000);
        this.note("linearizable read refused (" + e.code + "): showing a local read, possibly stale");
      }
      const msgs = rep.messages || [];
      this.ledger.checkRead(conv, began, msgs, local);
      this.server.set(conv, msgs);
      this.render();
    } catch (e) {
      this.note("cannot read " + conv + ": " + (e.code || e.message));
    } finally {
      this.fetching = false;
      if (this.fetchAgain) { this.fetchAgain = false; this.refetchSoon(); }
    }
  }

  sendText() {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = "";
    this.send(text);
  }

  async send(text) {
    const conv = this.conv;
    const item = { cmid: this.user + "-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 6), conv, text, status: "sending", t: Date.now() };
    this.local.push(item);
    this.render();
    const args = conv.startsWith("g:") ? { group: conv.slice(2) } : { to: this.peer };
    try {
      const rep = await this.wire.call("send", Object.assign(args, { text, cmid: item.cmid }));
      item.status = "accepted"; item.id = rep.msg_id; item.seq = rep.seq;
      this.ledger.ack(conv, rep.msg_id);
      this.ledger.count("accepted");
      this.onEvent("send", this.user + " → " + conv + ": \"" + text + "\" accepted, seq " + rep.seq);
    } catch (e) {
      item.status = e.code === "unavailable" ? "refused" : e.code === "timeout" ? "unknown" : "error";
      item.error = e.code + ": " + (e.message || "");
      if (item.status === "refused") this.ledger.count("refused");
      if (item.status === "unknown") this.ledger.count("unknown");
      this.onEvent(item.status === "error" ? "error" : "send", this.user + " → " + conv + ": \"" + text + "\" " + item.status + " (" + e.code + ")");
    }
    this.render();
    this.refetchSoon();
  }

  // view merges what the replica served with this panel's own sends that
  // it did not serve (refused, unknown, in flight), each placed after the
  // served messages older than it.
  view() {
    const served = this.server.get(this.conv) || [];
    const byId = new Map(served.map((m) => [m.id, m]));
    const mine = new Map();
    for (const it of this.local) if (it.conv === this.conv && it.id) mine.set(it.id, it);
    const rows = served.map((m) => ({ m, it: mine.get(m.id) }));
    for (const it of this.local) {
      if (it.conv !== this.conv || (it.id && byId.has(it.id))) continue;
      if (it.status === "unknown" || it.status === "refused") {
        const found = served.find((m) => m.cmid === it.cmid && m.from === this.user);
        if (found) { const r = rows.find((x) => x.m === found); if (r) r.it = it; continue; }
      }
      let at = rows.length;
      while (at > 0 && rows[at - 1].m && rows[at - 1].m.ts > it.t) at--;
      rows.splice(at, 0, { it });
    }
    return rows;
  }

  render() {
    const atBottom = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 8;
    this.list.innerHTML = "";
    for (const { m, it } of this.view()) {
      const marks = [];
      let status = "";
      if (it) {
        status = it.status;
        if (m && it.status === "unknown") marks.push(["unknown", "unknown → applied"]);
        else if (it.status === "accepted") marks.push(["accepted", "✓ accepted"]);
        else if (it.status === "refused") marks.push(["refused", "✗ refused"]);
        else if (it.status === "unknown") marks.push(["unknown", "? unknown"]);
        else if (it.status === "sending") marks.push(["sending", "…"]);
        else marks.push(["refused", it.error || "error"]);
      }
      const tentative = m ? m.tentative === true : (it && it.status === "accepted" && this.mode === "ap");
      if (tentative) marks.push(["tentative", "~ tentative"]);
      if (m && this.resynced.has(m.id)) marks.push(["resynced", "↻ resynced"]);
      const li = el("li", { class: "msg" + (status ? " " + status : "") + (m ? " served" : " unserved") });
      if (m) { li.dataset.id = m.id; li.dataset.seq = m.seq; }
      if (it) { li.dataset.cmid = it.cmid; li.dataset.status = it.status; }
      li.dataset.tentative = tentative ? "1" : "0";
      const markSpan = el("span", { class: "marks" });
      for (const [cls, text] of marks) markSpan.append(el("span", { class: "mark " + cls, title: it && it.error ? it.error : cls }, text));
      li.append(markSpan, el("span", { class: "seq" }, m ? "#" + m.seq : ""), el("span", { class: "from" }, m ? m.from : this.user), el("span", { class: "text" }, m ? m.text : it.text));
      this.list.append(li);
    }
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  // servedIds lists the ids of the shown conversation in the replica's
  // order: what the browser tests compare across panels.
  servedIds() { return (this.server.get(this.conv) || []).map((m) => m.id); }
}

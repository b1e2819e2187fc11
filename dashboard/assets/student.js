// student.js: the student page, one chat panel in the class group #lab on
// a gateway the student picks. It reads the gateways from the lab's member
// list and, from another machine, reaches them through the lab's relay.
"use strict";

(async function main() {
  const members = await (await fetch("/api/members")).json();
  const status = await (await fetch("/api/status")).json();
  const badge = document.getElementById("mode-badge");
  badge.textContent = status.mode.toUpperCase();
  badge.className = "badge " + status.mode;
  const gws = members.filter((m) => m.kind === "gateway");
  const pick = document.getElementById("gateway");
  for (const g of gws) pick.append(new Option(g.name, g.name));
  pick.selectedIndex = Math.floor(Math.random() * gws.length);
  const ledger = new Ledger();
  document.getElementById("join").addEventListener("submit", (e) => {
    e.preventDefault();
    const root = document.querySelector('.chat[data-panel="student"]');
    root.hidden = false;
    document.getElementById("join").hidden = true;
    const panel = new ChatPanel({
      root, user: document.getElementById("name").value, password: document.getElementById("password").value,
      peer: "", group: "lab", gateway: pick.value, ledger, device: "student",
      gateways: () => gws, onEvent: () => {},
    });
    panel.setGateways(gws);
    panel.start();
  });
})();

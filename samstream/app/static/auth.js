// Accounts in the page (after app.js, using its globals $, el, api, setStatus, loadProjects): the user's name and
// a logout button in the top bar, and a Share action on the projects the user owns. Nothing shows in single-user
// mode (no accounts).
"use strict";
(() => {
  let me = null;
  async function decorateProjects() {
    let projects;
    try { projects = await api("GET", "/api/projects", undefined, { quiet: true }); } catch { return; }
    const byId = new Map(projects.map((p) => [String(p.id), p]));
    for (const row of document.querySelectorAll("#projects li.project")) {
      const p = byId.get(row.dataset.projectId);
      if (!p || row.querySelector(".share")) continue;
      const members = p.members || [];
      const who = p.created_by === me ? (members.length ? `shared with ${members.join(", ")}` : "")
        : `${p.created_by}'s`;
      if (who) row.append(el("span", { className: "meta members", textContent: who }));
      if (p.created_by !== me) continue;
      row.append(el("button", { className: "share", textContent: "Share", title: "Share this project with a user",
        onclick: () => share(p) }));
    }
  }
  async function share(p) {
    const user = (prompt(`Share "${p.name}" with the user:`) || "").trim();
    if (!user) return;
    try {
      const res = await api("POST", `/api/projects/${p.id}/share`, { user });
      setStatus(`Shared ${p.name} with ${res.members.join(", ")}`);
      await loadProjects(p.id);
    } catch { /* shown */ }
  }
  async function start() {
    let session;
    try { session = await api("GET", "/api/session", undefined, { quiet: true }); } catch { return; }
    if (!session.accounts) return;
    me = session.user;
    $("#user-name").textContent = me;
    $("#account").hidden = false;
    $("#logout").addEventListener("click", async () => {
      try { await api("POST", "/api/logout"); } catch { /* shown */ }
      location.reload();
    });
    let queued = false;   // the list is rebuilt by app.js: decorate each new version once
    new MutationObserver(() => {
      if (queued) return;
      queued = true;
      setTimeout(() => { queued = false; decorateProjects(); }, 0);
    }).observe($("#projects"), { childList: true });
    decorateProjects();
  }
  start();
})();

// samstream app: the model in the loop. Automatic proposals on the current frame (drawn as yellow outlines; a
// click accepts one as a new object, Escape rejects them all) and the model picker in the top bar (with the
// progress of a download). Built on what app.js exposes as window.samstreamApp.
"use strict";
(() => {
  const A = window.samstreamApp, S = A.state;
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const c of children) node.append(c);
    return node;
  };
  const GRID_SIDE = 640;           // proposals are sampled to at most this many pixels a side for drawing and hits
  const OUTLINE = [255, 212, 0];   // proposal outlines: a yellow no object gets by default
  const JOB_POLL_MS = 300;
  document.head.append(el("link", { rel: "stylesheet", href: "/static/model.css" }));

  // ------------------------------------------------------------------------------------------ COCO RLE
  // compressed COCO counts (the string form) -> run lengths, column-major, starting with a run of zeros
  function rleCounts(s) {
    const counts = [];
    let p = 0;
    while (p < s.length) {
      let x = 0, k = 0, more = true, c = 0;
      while (more) {
        c = s.charCodeAt(p++) - 48;
        x += (c & 0x1f) * 2 ** (5 * k);
        more = Boolean(c & 0x20);
        k++;
      }
      if (c & 0x10) x -= 2 ** (5 * k);   // the sign bit of the last 5-bit group
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
    return counts;
  }

  // ------------------------------------------------------------------------------------------ proposals
  const P = { videoId: null, frame: null, items: [], gw: 0, gh: 0, small: [], hits: null, layer: null,
    hover: -1, hoverLayer: null, down: null };

  function gridOf(W, H) {
    const k = Math.min(1, GRID_SIDE / Math.max(W, H));
    return [Math.max(1, Math.round(W * k)), Math.max(1, Math.round(H * k))];
  }
  // one proposal's mask sampled to the grid: Uint8Array(gw * gh), row-major
  function sample(rle, full, W, H, gw, gh) {
    full.fill(0);
    let pos = 0;
    rleCounts(rle.counts).forEach((n, i) => { if (i % 2) full.fill(1, pos, pos + n); pos += n; });
    const out = new Uint8Array(gw * gh);
    for (let gy = 0; gy < gh; gy++) {
      const sy = Math.min(H - 1, Math.floor((gy + 0.5) * H / gh));
      for (let gx = 0; gx < gw; gx++) {
        const sx = Math.min(W - 1, Math.floor((gx + 0.5) * W / gw));
        out[gy * gw + gx] = full[sx * H + sy];
      }
    }
    return out;
  }
  function paint(masks, fill) {   // -> a canvas of the grid: outlines (and a translucent fill)
    const { gw, gh } = P, img = new ImageData(gw, gh), d = img.data;
    for (const m of masks) {
      for (let y = 0; y < gh; y++) {
        for (let x = 0; x < gw; x++) {
          const i = y * gw + x;
          if (!m[i]) continue;
          const edge = x === 0 || y === 0 || x === gw - 1 || y === gh - 1 || !m[i - 1] || !m[i + 1] || !m[i - gw] || !m[i + gw];
          if (!edge && !fill) continue;
          d.set([...OUTLINE, edge ? 255 : 90], 4 * i);
        }
      }
    }
    const c = el("canvas", { width: gw, height: gh });
    c.getContext("2d").putImageData(img, 0, 0);
    return c;
  }
  function setProposals(frame, items) {
    const W = S.video.width, H = S.video.height;
    [P.gw, P.gh] = gridOf(W, H);
    P.videoId = S.video.id;
    P.frame = frame;
    P.items = items;
    P.hover = -1;
    P.hoverLayer = null;
    const full = new Uint8Array(W * H);
    P.small = items.map((p) => sample(p.rle, full, W, H, P.gw, P.gh));
    // hits: the index of the smallest proposal under each grid pixel, so a part inside a whole can be picked
    P.hits = new Int16Array(P.gw * P.gh).fill(-1);
    const order = items.map((_, i) => i).sort((a, b) => items[b].area - items[a].area);
    for (const i of order) P.small[i].forEach((v, j) => { if (v) P.hits[j] = i; });
    P.layer = items.length ? paint(P.small, false) : null;
    $("#proposals").classList.toggle("active", items.length > 0);
    A.render();
  }
  function visible() {
    return Boolean(S.video && P.layer && P.videoId === S.video.id && P.frame === S.frame);
  }
  function hitAt(ev) {
    if (!visible()) return -1;
    const [x, y] = A.eventToVideo(ev);
    const gx = Math.floor(x * P.gw / S.video.width), gy = Math.floor(y * P.gh / S.video.height);
    if (gx < 0 || gy < 0 || gx >= P.gw || gy >= P.gh) return -1;
    return P.hits[gy * P.gw + gx];
  }
  function findProposals() {
    if (!S.video) return;
    const frame = S.frame;
    A.write("Finding objects", async () => {
      const res = await A.api("POST", A.vurl("/proposals"), { frame });
      setProposals(frame, res.proposals);
      A.setStatus(res.proposals.length
        ? `${res.proposals.length} proposals on frame ${frame} (${res.seconds.toFixed(1)} s): click one to accept it, Esc rejects them`
        : `No new objects found on frame ${frame}`);
    });
  }
  function accept(p) {
    A.write("Accepting the proposal", async () => {
      const res = await A.api("POST", A.vurl(`/proposals/${p.id}/accept`), { version: S.version });
      setProposals(p.frame, res.proposals);
      await A.afterWrite();
      A.selectObject(res.object.obj_id);
      A.setStatus(`Proposal accepted as object ${res.object.obj_id}`);
    });
  }
  function rejectAll() {
    if (!S.video) return;
    const frame = P.frame;
    setProposals(frame, []);
    A.api("DELETE", A.vurl("/proposals")).then(() => A.setStatus("Proposals rejected")).catch(() => {});
  }

  A.drawHooks.push((g) => {
    if (!visible()) return;
    const smooth = g.imageSmoothingEnabled;
    g.imageSmoothingEnabled = false;
    g.drawImage(P.layer, 0, 0, S.video.width, S.video.height);
    if (P.hover >= 0 && P.hoverLayer) g.drawImage(P.hoverLayer, 0, 0, S.video.width, S.video.height);
    g.imageSmoothingEnabled = smooth;
  });

  // clicks on a proposal accept it (before the click tool sees them); elsewhere the tools work as usual
  const viewer = $("#viewer");
  viewer.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || ev.shiftKey) return;
    const i = hitAt(ev);
    if (i < 0) return;
    ev.stopPropagation();
    ev.preventDefault();
    P.down = { i, x: ev.clientX, y: ev.clientY };
  }, true);
  viewer.addEventListener("pointerup", (ev) => {
    const d = P.down;
    if (!d) return;
    P.down = null;
    ev.stopPropagation();
    if (Math.hypot(ev.clientX - d.x, ev.clientY - d.y) <= 5 && P.items[d.i]) accept(P.items[d.i]);
  }, true);
  viewer.addEventListener("pointermove", (ev) => {
    const i = hitAt(ev);
    if (i === P.hover) return;
    P.hover = i;
    P.hoverLayer = i >= 0 ? paint([P.small[i]], true) : null;
    viewer.classList.toggle("over-proposal", i >= 0);
    A.render();
  });

  // shortcuts: in app.js's table (so the help lists them); Escape rejects only while proposals are shown
  A.shortcuts.unshift({ keys: ["Escape"], help: "Reject all proposals (while they are shown)",
    match: (e) => e.key === "Escape" && visible() && $("#help-overlay").hidden, run: () => rejectAll() });
  A.shortcuts.push({ keys: ["a"], help: "Proposals: the objects the model finds on this frame (click one to accept it)",
    run: () => findProposals() });
  A.buildHelp();

  const button = el("button", { id: "proposals", title: "Proposals (A): objects the model finds on this frame; click one to accept it, Esc rejects them",
    innerHTML: "&#10022; Proposals", onclick: findProposals });
  const toolbar = $("#topbar .toolbar");
  if (toolbar) toolbar.append(el("div", { className: "group" }, button));

  // ------------------------------------------------------------------------------------------ model picker
  const picker = el("select", { id: "model-picker", title: "The model (switching keeps every stored mask)" });
  const bar = el("progress", { id: "model-progress", max: 1, value: 0, hidden: true });
  const stop = el("button", { id: "model-cancel", title: "Cancel the download", textContent: "\u25a0", hidden: true });
  const box = el("div", { id: "model-box", className: "group" }, el("span", { className: "label", textContent: "Model" }),
    picker, bar, stop);
  $("#topbar").insertBefore(box, $("#status"));
  let listing = null;
  const mb = (n) => (n ? `${Math.round(n / 1e6)} MB` : "");

  async function loadModels() {
    try { listing = await A.api("GET", "/api/models", undefined, { quiet: true }); } catch { return; }
    picker.replaceChildren(el("option", { value: listing.embedded, textContent: `${listing.embedded} (embedded)` }));
    const official = el("optgroup", { label: "Official (Meta)" });
    for (const o of listing.official) {
      official.append(el("option", { value: o.name,
        textContent: o.cached ? o.name : `${o.name} \u2014 download${o.size ? " " + mb(o.size) : ""}` }));
    }
    picker.append(official);
    if (listing.files.length) {
      const files = el("optgroup", { label: "Data folder" });
      for (const f of listing.files) files.append(el("option", { value: f.path, textContent: f.path }));
      picker.append(files);
    }
    if (![...picker.options].some((o) => o.value === listing.current)) {
      picker.prepend(el("option", { value: listing.current, textContent: listing.current }));
    }
    picker.value = listing.current;
    if (listing.job && ["downloading", "loading"].includes(listing.job.state)) pollModelJob();
  }
  function showJob(job) {
    const running = Boolean(job && ["downloading", "loading"].includes(job.state));
    bar.hidden = !running;
    stop.hidden = !(running && job.state === "downloading");
    picker.disabled = running;
    if (!running) return;
    if (job.state === "downloading" && job.total) { bar.max = job.total; bar.value = job.done; }
    else bar.removeAttribute("value");   // indeterminate
    bar.title = job.state === "downloading"
      ? `Downloading ${job.name}: ${mb(job.done)}${job.total ? " / " + mb(job.total) : ""}` : `Loading ${job.name}`;
    A.setStatus(bar.title, "busy");
  }
  let polling = false;
  async function pollModelJob() {
    if (polling) return;
    polling = true;
    let job = null;
    try {
      for (;;) {
        try { job = await A.api("GET", "/api/model/job", undefined, { quiet: true }); } catch { job = null; }
        showJob(job);
        if (!job || !["downloading", "loading"].includes(job.state)) break;
        await new Promise((r) => setTimeout(r, JOB_POLL_MS));
      }
    } finally {
      polling = false;
    }
    if (job && job.state === "failed") A.showError(`model ${job.name}: ${job.error}`);
    else if (job && job.state === "cancelled") A.setStatus(`The download of ${job.name} was cancelled (it resumes next time)`);
    else if (job && job.state === "done") {
      if (S.info) S.info.model = job.name;
      A.setStatus(`Model: ${job.name}`);
    }
    await loadModels();
  }
  picker.addEventListener("change", async () => {
    const name = picker.value;
    try {
      showJob(await A.api("POST", "/api/model", { name }));
      pollModelJob();
    } catch {
      if (listing) picker.value = listing.current;   // refused (shown): the model stays
    }
  });
  stop.addEventListener("click", () => { A.api("POST", "/api/model/cancel").catch(() => {}); });
  loadModels();
})();

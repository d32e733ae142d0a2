// samstream app: the browser UI. Plain ES2020, no framework, no build step; it talks only to the HTTP API
// (/api/...). Everything is stored by the server, so the page can be reloaded at any time: the URL hash holds
// the video, frame and object (#video=ID&frame=T&obj=K) and the rest is read back.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
};

const MAX_IMAGE_SIDE = 1920;   // the largest frame the browser asks for (the server never upscales)
const SIZE_STEP = 256;         // image sizes are rounded up to a step so a small resize keeps the cache
const FRAME_CACHE = 48;        // decoded frames kept for scrubbing
const OVERLAY_CACHE = 24;
const PREFETCH = [1, 2, 3, 4, -1, -2];   // neighbours fetched after the current frame
const MAX_FETCHES = 4;         // image requests in flight at once
const JOB_POLL_MS = 250;
const ZOOM_MIN = 0.25, ZOOM_MAX = 32;

// ---------------------------------------------------------------------------------------------- state
const S = {
  info: null,
  video: null,          // GET /api/videos/{vid}: + objects, can_undo, can_redo, job
  version: null,        // the last version the server returned; sent with every write
  frame: 0,
  obj: null,            // selected obj_id
  tool: "click",
  radius: 8,            // brush radius, video pixels
  zoom: 1, panX: 0, panY: 0,
  epoch: 0,             // bumped whenever the masks may have changed: overlays of older epochs are stale
  timeline: null,
  markers: new Map(),   // "obj:frame" -> {points: [[x, y, positive]], box}
  pending: null,        // the click being sent: drawn at once
  job: null,
  showPrompts: true,
  playing: false,
};

// ---------------------------------------------------------------------------------------------- status line
let busyCount = 0;
let lastMessage = "";
function setStatus(text, kind = "idle") {
  const s = $("#status");
  s.textContent = text;
  s.title = text;
  s.className = kind;
}
function showError(message) {
  lastMessage = message;
  setStatus(message, "error");
}
// run `promise` with a busy indicator; errors are shown by api(), never thrown at the user
async function busy(label, fn) {
  busyCount++;
  setStatus(label + "\u2026", "busy");
  try {
    return await fn();
  } finally {
    busyCount--;
    const s = $("#status");
    if (busyCount === 0 && s.classList.contains("busy")) setStatus(idleText(), "idle");
  }
}
function idleText() {
  if (S.job && S.job.state === "running") return `Propagating ${S.job.done} / ${S.job.total}`;
  return lastMessage && $("#status").classList.contains("error") ? lastMessage : "Ready";
}

// ---------------------------------------------------------------------------------------------- HTTP
class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}
let inFlight = 0;
let csrf = null;   // the session's CSRF token, sent on every write ("" in single-user mode)
async function csrfToken() {
  if (csrf === null) {
    try {
      const res = await fetch("/api/session");
      csrf = res.ok ? (await res.json()).csrf || "" : "";
    } catch { return ""; }   // the request itself then says the server is unreachable
  }
  return csrf;
}
// JSON request; a non-2xx answer shows its error in #status and throws ApiError (a 409 also reloads the video;
// a 401 reloads the page, which then shows the login)
async function api(method, path, body, { quiet = false } = {}) {
  const opts = { method, headers: {} };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = await csrfToken();
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  inFlight++;
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    if (!quiet) showError("cannot reach the server: " + e.message);
    throw new ApiError(0, "network error");
  } finally {
    inFlight--;
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (res.status === 401) location.reload();
  if (!res.ok) {
    const message = (data && data.error) || `${method} ${path}: HTTP ${res.status}`;
    if (!quiet) showError(message);
    if (res.status === 409 && S.video && path.startsWith(`/api/videos/${S.video.id}`)) {
      if (data && Number.isInteger(data.version)) S.version = data.version;
      reloadVideo(); // another tab (or a running job) changed it: show the current state
    }
    throw new ApiError(res.status, message, data);
  }
  if (data && typeof data === "object" && Number.isInteger(data.version)) S.version = data.version;
  return data;
}
const vurl = (rest = "") => `/api/videos/${S.video.id}${rest}`;

// images: fetch -> ImageBitmap, a few at a time, the current frame first
const imageQueue = [];
let imageFetches = 0;
function fetchImage(url, priority) {
  return new Promise((resolve, reject) => {
    imageQueue.push({ url, priority, resolve, reject });
    imageQueue.sort((a, b) => a.priority - b.priority);
    pumpImages();
  });
}
function pumpImages() {
  while (imageFetches < MAX_FETCHES && imageQueue.length) {
    const job = imageQueue.shift();
    imageFetches++;
    (async () => {
      const res = await fetch(job.url);
      if (!res.ok) {
        let message = `HTTP ${res.status}`;
        try { message = (await res.json()).error || message; } catch { /* not JSON */ }
        throw new ApiError(res.status, message);
      }
      return createImageBitmap(await res.blob());
    })().then(job.resolve, job.reject).finally(() => { imageFetches--; pumpImages(); render(); });
  }
}

// a small LRU of promises of decoded images
class ImageCache {
  constructor(limit) { this.limit = limit; this.map = new Map(); }
  get(key) {
    const hit = this.map.get(key);
    if (hit) { this.map.delete(key); this.map.set(key, hit); }
    return hit;
  }
  put(key, entry) {
    this.map.set(key, entry);
    while (this.map.size > this.limit) {
      const [oldKey] = this.map.entries().next().value;
      this.map.delete(oldKey);
      // its bitmap is not closed: a newer overlay entry may hold it as its `previous`, or `shown` be drawing it;
      // the garbage collector frees it once nothing refers to it
    }
  }
  clear() { this.map.clear(); }
}
const frames = new ImageCache(FRAME_CACHE);      // key "t@size" -> {promise, bitmap}
const overlays = new ImageCache(OVERLAY_CACHE);  // key "t@size" -> {promise, bitmap, epoch}

function requestSize() {
  const c = $("#frame-canvas");
  const side = Math.max(c.clientWidth, c.clientHeight) * (window.devicePixelRatio || 1);
  return Math.max(SIZE_STEP, Math.min(MAX_IMAGE_SIDE, Math.ceil(side / SIZE_STEP) * SIZE_STEP));
}
function loadFrame(t, priority) {
  const size = requestSize(), key = `${t}@${size}`;
  let entry = frames.get(key);
  if (!entry) {
    entry = { bitmap: null, failed: false };
    entry.promise = fetchImage(vurl(`/frames/${t}?size=${size}`), priority)
      .then((b) => { entry.bitmap = b; return b; })
      .catch((e) => { entry.failed = true; if (t === S.frame) showError(e.message); });   // kept: no retry loop
    frames.put(key, entry);
  }
  return entry;
}
// the overlay of the current epoch; an older one of the same frame is kept (and drawn) until the new one comes
function loadOverlay(t, priority) {
  const size = requestSize(), key = `${t}@${size}`;
  let entry = overlays.get(key);
  if (entry && entry.epoch === S.epoch) return entry;
  const next = { epoch: S.epoch, bitmap: null, previous: entry && (entry.bitmap || entry.previous) };
  next.promise = fetchImage(vurl(`/overlay/${t}?size=${size}&e=${S.epoch}`), priority)
    .then((b) => {
      next.bitmap = b;
      next.previous = null;   // (not closed: a still newer entry may hold it as its own `previous`)
      return b;
    })
    .catch((e) => { next.failed = true; if (t === S.frame) showError(e.message); });
  overlays.map.delete(key);
  overlays.put(key, next);
  return next;
}
function prefetch() {
  const T = S.video.num_frames;
  for (const d of PREFETCH) {
    const t = S.frame + (S.playing ? Math.abs(d) : d);
    if (t >= 0 && t < T) loadFrame(t, 10 + Math.abs(d));
  }
  for (const d of [1, -1]) {
    const t = S.frame + d;
    if (t >= 0 && t < T) loadOverlay(t, 20);
  }
}

// ---------------------------------------------------------------------------------------------- view geometry
const canvas = () => $("#frame-canvas");
function dpr() { return window.devicePixelRatio || 1; }
// video pixel -> canvas backing-store pixel: p = off + v * scale
function viewTransform() {
  const c = canvas(), W = S.video.width, H = S.video.height;
  const fit = Math.min(c.width / W, c.height / H);
  const scale = fit * S.zoom;
  return {
    scale,
    offX: (c.width - W * scale) / 2 + S.panX * dpr(),
    offY: (c.height - H * scale) / 2 + S.panY * dpr(),
  };
}
function eventToVideo(ev) {
  const r = canvas().getBoundingClientRect(), v = viewTransform();
  const px = (ev.clientX - r.left) * dpr(), py = (ev.clientY - r.top) * dpr();
  return [(px - v.offX) / v.scale, (py - v.offY) / v.scale];
}
function insideVideo([x, y]) {
  return x >= 0 && y >= 0 && x < S.video.width && y < S.video.height;
}
function clampToVideo([x, y]) {
  return [Math.min(Math.max(x, 0), S.video.width - 1e-3), Math.min(Math.max(y, 0), S.video.height - 1e-3)];
}
function resizeCanvas() {
  const c = canvas();
  const w = Math.max(1, Math.round(c.clientWidth * dpr())), h = Math.max(1, Math.round(c.clientHeight * dpr()));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  render();
  drawTimeline();
}
function setZoom(zoom, anchorClient) {
  zoom = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, zoom));
  const c = canvas(), r = c.getBoundingClientRect();
  // keep the video point under the anchor (default: the centre) where it is
  const ax = anchorClient ? anchorClient[0] - r.left : r.width / 2;
  const ay = anchorClient ? anchorClient[1] - r.top : r.height / 2;
  const k = zoom / S.zoom;
  const cx = r.width / 2 + S.panX, cy = r.height / 2 + S.panY;   // CSS px of the video centre
  S.panX = ax - (ax - cx) * k - r.width / 2;
  S.panY = ay - (ay - cy) * k - r.height / 2;
  S.zoom = zoom;
  $("#zoom-level").textContent = Math.round(zoom * 100) + "%";
  render();
}
function resetZoom() { S.zoom = 1; S.panX = 0; S.panY = 0; $("#zoom-level").textContent = "100%"; render(); }

// ---------------------------------------------------------------------------------------------- drawing
let shown = { frame: null, bitmap: null };   // the frame image on screen (kept until the next one arrives)
// when each frame's overlay of an epoch was first drawn (benchmarks/app_latency.py times clicks with it)
let overlayDrawn = { frame: null, epoch: -1, at: 0 };
let renderQueued = false;
const drawHooks = [];   // functions (g, scale) that draw over the frame after the built-in layers
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; draw(); });
}
function draw() {
  if (!S.video) return;
  const c = canvas(), g = c.getContext("2d");
  g.setTransform(1, 0, 0, 1, 0, 0);
  g.fillStyle = "#0d0e10";
  g.fillRect(0, 0, c.width, c.height);
  const f = loadFrame(S.frame, 0);
  if (f.bitmap) shown = { frame: S.frame, bitmap: f.bitmap };
  const v = viewTransform(), W = S.video.width, H = S.video.height;
  g.imageSmoothingEnabled = v.scale < 4 * dpr();   // far zoomed in: show the pixels
  g.imageSmoothingQuality = "high";
  if (shown.bitmap) {
    try {
      g.drawImage(shown.bitmap, v.offX, v.offY, W * v.scale, H * v.scale);
    } catch {
      shown = { frame: null, bitmap: null };   // evicted (closed) after a resize: the new size is on its way
    }
    // the overlay only over its own frame (an old frame with a new overlay would mislead)
    if (shown.frame === S.frame) {
      const o = loadOverlay(S.frame, 1), ob = o.bitmap || o.previous;
      if (ob) {
        g.imageSmoothingEnabled = false;   // crisp mask edges
        try {
          g.drawImage(ob, v.offX, v.offY, W * v.scale, H * v.scale);
        } catch { /* a released bitmap: the current overlay is on its way */ }
      }
      if (o.bitmap && (overlayDrawn.frame !== S.frame || overlayDrawn.epoch !== o.epoch)) {
        overlayDrawn = { frame: S.frame, epoch: o.epoch, at: performance.now() };
      }
    }
  }
  g.setTransform(v.scale, 0, 0, v.scale, v.offX, v.offY);   // from here on: video pixels
  if (S.showPrompts) drawMarkers(g, v.scale);
  drawGesture(g, v.scale);
  for (const hook of drawHooks) hook(g, v.scale);   // extensions (model.js), in video pixels
  prefetch();
}
function colourOf(objId) {
  const o = S.video && S.video.objects.find((x) => x.obj_id === objId);
  return (o && o.colour) || "#ffffff";
}
function drawPlus(g, x, y, s, positive) {
  g.beginPath();
  g.arc(x, y, s, 0, 2 * Math.PI);
  g.fillStyle = positive ? "#1db954" : "#e5484d";
  g.fill();
  g.lineWidth = s * 0.25;
  g.strokeStyle = "#fff";
  g.stroke();
  g.beginPath();
  g.moveTo(x - s * 0.5, y); g.lineTo(x + s * 0.5, y);
  if (positive) { g.moveTo(x, y - s * 0.5); g.lineTo(x, y + s * 0.5); }
  g.lineWidth = s * 0.28;
  g.stroke();
}
function drawMarkers(g, scale) {
  const s = 6 * dpr() / scale;   // markers keep their screen size at any zoom
  for (const [key, m] of S.markers) {
    const [objId, frame] = key.split(":").map(Number);
    if (frame !== S.frame) continue;
    const o = S.video.objects.find((x) => x.obj_id === objId);
    if (!o || o.hidden) continue;
    if (m.box) {
      g.lineWidth = 2 * dpr() / scale;
      g.setLineDash([6 / scale, 4 / scale]);
      g.strokeStyle = o.colour;
      const [x0, y0, x1, y1] = m.box;
      g.strokeRect(x0, y0, x1 - x0, y1 - y0);
      g.setLineDash([]);
    }
    for (const [x, y, positive] of m.points) drawPlus(g, x, y, s, positive);
  }
  if (S.pending && S.pending.frame === S.frame) drawPlus(g, S.pending.x, S.pending.y, s, S.pending.positive);
}

// ---------------------------------------------------------------------------------------------- gestures
let gesture = null;   // {kind: "box" | "brush" | "pan" | "click", start, points, ...}
let hover = null;     // last pointer position in video pixels (for the brush cursor)
let spaceDown = false, spaceUsed = false;
function drawGesture(g, scale) {
  if (gesture && gesture.kind === "box") {
    const [x0, y0] = gesture.start, [x1, y1] = gesture.last;
    g.lineWidth = 2 * dpr() / scale;
    g.strokeStyle = colourOf(S.obj);
    g.fillStyle = "rgba(255,255,255,0.08)";
    g.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    g.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
  }
  if (gesture && gesture.kind === "brush" && gesture.points.length) {
    g.save();
    g.globalAlpha = 0.55;
    g.strokeStyle = gesture.erase ? "#000" : colourOf(S.obj);
    g.fillStyle = g.strokeStyle;
    g.lineWidth = 2 * S.radius;
    g.lineCap = "round"; g.lineJoin = "round";
    g.beginPath();
    const [fx, fy] = gesture.points[0];
    g.moveTo(fx, fy);
    for (const [x, y] of gesture.points) g.lineTo(x, y);
    if (gesture.points.length === 1) { g.arc(fx, fy, S.radius, 0, 2 * Math.PI); g.fill(); } else g.stroke();
    g.restore();
  }
  if ((S.tool === "brush" || S.tool === "eraser") && hover && !(gesture && gesture.kind === "pan")) {
    g.beginPath();
    g.arc(hover[0], hover[1], S.radius, 0, 2 * Math.PI);
    g.lineWidth = 1.5 * dpr() / scale;
    g.strokeStyle = S.tool === "eraser" ? "#ffb3b3" : "#ffffff";
    g.stroke();
  }
}
function onPointerDown(ev) {
  if (!S.video) return;
  $("#viewer").focus({ preventScroll: true });
  const p = eventToVideo(ev);
  if (ev.button === 1 || (ev.button === 0 && spaceDown)) {
    gesture = { kind: "pan", client: [ev.clientX, ev.clientY], pan: [S.panX, S.panY] };
    spaceUsed = true;
    $("#viewer").classList.add("panning");
  } else if (S.tool === "click" && (ev.button === 0 || ev.button === 2)) {
    gesture = { kind: "click", start: p, client: [ev.clientX, ev.clientY],
      positive: ev.button === 0 && !ev.shiftKey };
  } else if (S.tool === "box" && ev.button === 0) {
    gesture = { kind: "box", start: clampToVideo(p), last: clampToVideo(p) };
  } else if ((S.tool === "brush" || S.tool === "eraser") && ev.button === 0) {
    gesture = { kind: "brush", erase: S.tool === "eraser", points: [p] };
  } else return;
  canvas().setPointerCapture(ev.pointerId);
  ev.preventDefault();
  render();
}
function onPointerMove(ev) {
  if (!S.video) return;
  const p = eventToVideo(ev);
  hover = p;
  if (gesture) {
    if (gesture.kind === "pan") {
      S.panX = gesture.pan[0] + ev.clientX - gesture.client[0];
      S.panY = gesture.pan[1] + ev.clientY - gesture.client[1];
    } else if (gesture.kind === "box") gesture.last = clampToVideo(p);
    else if (gesture.kind === "brush") {
      const [lx, ly] = gesture.points[gesture.points.length - 1];
      // keep the stroke short: a point per half radius is plenty for capsules
      if (Math.hypot(p[0] - lx, p[1] - ly) >= Math.max(1, S.radius / 2)) gesture.points.push(p);
    }
  }
  render();
}
function onPointerUp(ev) {
  const g = gesture;
  gesture = null;
  $("#viewer").classList.remove("panning");
  if (!g || !S.video) return;
  if (g.kind === "click") {
    const moved = Math.hypot(ev.clientX - g.client[0], ev.clientY - g.client[1]);
    if (moved <= 5 && insideVideo(g.start)) sendClick(g.start, g.positive);
  } else if (g.kind === "box") {
    const [x0, y0] = g.start, [x1, y1] = g.last;
    if (Math.abs(x1 - x0) >= 2 && Math.abs(y1 - y0) >= 2) {
      sendBox([Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)]);
    }
  } else if (g.kind === "brush") {
    const p = eventToVideo(ev), [lx, ly] = g.points[g.points.length - 1];
    if (Math.hypot(p[0] - lx, p[1] - ly) > 0.5) g.points.push(p);
    sendBrush(g.points, g.erase);
  }
  render();
}
function onWheel(ev) {
  if (!S.video) return;
  ev.preventDefault();
  const k = Math.exp(-ev.deltaY * (ev.deltaMode === 1 ? 0.05 : 0.0015));
  setZoom(S.zoom * k, [ev.clientX, ev.clientY]);
}

// ---------------------------------------------------------------------------------------------- actions
// writes run one after another so each carries the version its predecessor returned
let writeChain = Promise.resolve();
let queuedWrites = 0;
function write(label, fn) {
  queuedWrites++;
  const run = writeChain.then(() => busy(label, fn)).catch((e) => {
    if (!(e instanceof ApiError)) { showError(String(e.message || e)); console.error(e); }
  }).finally(() => { queuedWrites--; });
  writeChain = run;
  return run;
}
function jobRunning() { return Boolean(S.job && S.job.state === "running"); }
// an object to act on: the selected one, or a new one
async function ensureObject() {
  if (S.obj !== null && S.video.objects.some((o) => o.obj_id === S.obj)) return S.obj;
  const res = await api("POST", vurl("/objects"), { version: S.version });
  await refreshVideo();
  selectObject(res.object.obj_id);
  return S.obj;
}
// after every write: the masks changed (new overlays), and the video state, timeline and prompts are read back
async function afterWrite() {
  S.epoch++;
  render();
  await Promise.all([refreshVideo(), refreshTimeline(), refreshMarkers()]);
  render();
}
function sendClick([x, y], positive) {
  const frame = S.frame;
  S.pending = { x, y, positive, frame };
  render();
  write("Running the model", async () => {
    try {
      const obj = await ensureObject();
      await api("POST", vurl("/click"), { obj_id: obj, frame, x, y, positive, version: S.version });
    } finally {
      S.pending = null;
    }
    await afterWrite();
  });
}
function sendBox(box) {
  const frame = S.frame;
  write("Running the model", async () => {
    const obj = await ensureObject();
    await api("POST", vurl("/box"), { obj_id: obj, frame, box, version: S.version });
    await afterWrite();
  });
}
function sendBrush(points, erase) {
  const frame = S.frame, radius = S.radius;
  write(erase ? "Erasing" : "Painting", async () => {
    const obj = await ensureObject();
    await api("POST", vurl("/brush"), { obj_id: obj, frame, points, radius, erase, version: S.version });
    await afterWrite();
  });
}
function clearFrame() {
  if (S.obj === null) return;
  const obj = S.obj, frame = S.frame;
  write("Clearing", async () => {
    await api("POST", vurl("/clear"), { obj_id: obj, frame, version: S.version });
    await afterWrite();
  });
}
function addObject() {
  write("Adding an object", async () => {
    const res = await api("POST", vurl("/objects"), { version: S.version });
    await refreshVideo();
    selectObject(res.object.obj_id);
    await afterWrite();
  });
}
function patchObject(objId, fields) {
  write("Saving", async () => {
    await api("PATCH", vurl(`/objects/${objId}`), { ...fields, version: S.version });
    await afterWrite();
  });
}
function deleteObject(objId) {
  write("Deleting", async () => {
    await api("DELETE", vurl(`/objects/${objId}?version=${S.version}`));
    if (S.obj === objId) S.obj = null;
    await afterWrite();
    if (S.obj === null && S.video.objects.length) selectObject(S.video.objects[0].obj_id);
  });
}
function undoRedo(which) {
  write(which === "undo" ? "Undoing" : "Redoing", async () => {
    const res = await api("POST", vurl("/" + which), { version: S.version });
    const ev = res && res.event;
    await afterWrite();
    // the frame the undone / redone action was on, so the change is visible
    if (ev && ev.payload && Number.isInteger(ev.payload.frame) && ev.payload.frame !== S.frame) seek(ev.payload.frame);
    setStatus(`${which === "undo" ? "Undid" : "Redid"} ${ev ? ev.kind.replace("_", " ") : ""}`);
  });
}
function propagate(direction) {
  if (jobRunning()) return;
  const frame = S.frame;
  write("Starting propagation", async () => {
    const res = await api("POST", vurl("/propagate"), { frame, direction, version: S.version });
    S.job = res.job;
    updateJobUI();
    pollJob();
  });
}
async function cancelJob() {
  if (!jobRunning()) return;
  try {
    S.job = await api("POST", vurl("/cancel"));
    updateJobUI();
  } catch { /* shown */ }
}

// propagation: poll the job, redraw the current frame's overlay and the timeline as frames arrive
let polling = false;
async function pollJob() {
  if (polling) return;
  polling = true;
  try {
    while (S.video && jobRunning()) {
      await new Promise((r) => setTimeout(r, JOB_POLL_MS));
      if (!S.video) break;
      const before = S.job ? S.job.done : -1;
      let job;
      try { job = await api("GET", vurl("/job"), undefined, { quiet: true }); } catch { continue; }
      S.job = job;
      updateJobUI();
      if (!job || job.done !== before || job.state !== "running") {
        S.epoch++;
        render();
        await refreshTimeline();
      }
    }
    // the end: one last full refresh (the version moved with every flush)
    await afterWrite();
    if (S.job) {
      if (S.job.state === "failed") showError("propagation failed: " + (S.job.error || "unknown error"));
      else setStatus(`Propagation ${S.job.state}: ${S.job.done} / ${S.job.total} frames`);
    }
  } finally {
    polling = false;
  }
}
function updateJobUI() {
  const running = jobRunning(), p = $("#progress");
  if (S.job) { p.max = Math.max(1, S.job.total); p.value = S.job.done; }
  p.classList.toggle("running", running);
  p.title = S.job ? `${S.job.done} / ${S.job.total} frames (${S.job.state})` : "No propagation yet";
  $("#cancel").disabled = !running;
  for (const id of ["#propagate-forward", "#propagate-backward", "#propagate-both"]) $(id).disabled = running;
  $("#undo").disabled = running || !(S.video && S.video.can_undo);
  $("#redo").disabled = running || !(S.video && S.video.can_redo);
  if (running) setStatus(`Propagating ${S.job.done} / ${S.job.total}`, "busy");
}

async function exportMasks() {
  const format = $("#export-format").value;
  await busy("Exporting", async () => {
    let res;
    try {
      res = await fetch(vurl(`/export?format=${encodeURIComponent(format)}`));
    } catch (e) { showError("cannot reach the server: " + e.message); return; }
    if (!res.ok) {
      let message = `export: HTTP ${res.status}`;
      try { message = (await res.json()).error || message; } catch { /* not JSON */ }
      showError(message);
      return;
    }
    const disp = res.headers.get("Content-Disposition") || "";
    const m = /filename="?([^";]+)"?/.exec(disp);
    const name = m ? m[1] : `export-${format}`;
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    setStatus(`Exported ${name}`);
  });
}

// ---------------------------------------------------------------------------------------------- reading state
async function refreshVideo() {
  const v = await api("GET", vurl(), undefined, { quiet: true });
  S.video = v;
  S.version = v.version;
  if (v.job) S.job = v.job;
  renderObjects();
  updateJobUI();
  return v;
}
let reloading = null;
function reloadVideo() {
  // after a 409: everything from the server again (queued behind nothing, so it is never blocked by a write)
  if (!reloading) {
    reloading = (async () => {
      try { S.epoch++; await Promise.all([refreshVideo(), refreshTimeline(), refreshMarkers()]); render(); }
      catch { /* shown */ } finally { reloading = null; }
    })();
  }
  return reloading;
}
async function refreshTimeline() {
  try { S.timeline = await api("GET", vurl("/timeline"), undefined, { quiet: true }); } catch { return; }
  buildTimeline();
}
// the prompts now in force, from the history: the "done" events replayed oldest first
async function refreshMarkers() {
  let events;
  try { events = await api("GET", vurl("/history?limit=1000"), undefined, { quiet: true }); } catch { return; }
  const markers = new Map();
  for (const ev of events.slice().reverse()) {
    const p = ev.payload || {};
    if (ev.state !== "done" || !Number.isInteger(p.obj_id) || !Number.isInteger(p.frame)) continue;
    const key = `${p.obj_id}:${p.frame}`;
    if (ev.kind === "click") {
      const m = markers.get(key) || { points: [], box: null };
      m.points.push([p.x, p.y, p.positive !== false]);
      markers.set(key, m);
    } else if (ev.kind === "box" && Array.isArray(p.box)) markers.set(key, { points: [], box: p.box });
    else if (ev.kind === "brush" || ev.kind === "clear") markers.delete(key);
  }
  S.markers = markers;
  render();
}

// ---------------------------------------------------------------------------------------------- objects panel
function selectObject(objId) {
  S.obj = objId;
  for (const row of document.querySelectorAll(".object-row")) {
    row.classList.toggle("selected", Number(row.dataset.objId) === objId);
  }
  updateHash();
  render();
}
function renderObjects() {
  const list = $("#objects");
  list.replaceChildren();
  const objs = S.video.objects.filter((o) => !o.deleted);
  if (S.obj !== null && !objs.some((o) => o.obj_id === S.obj)) S.obj = null;
  objs.forEach((o, i) => {
    const swatch = el("input", { type: "color", className: "swatch", value: o.colour, title: "Colour" });
    swatch.style.background = o.colour;
    swatch.addEventListener("click", (e) => e.stopPropagation());
    swatch.addEventListener("change", () => patchObject(o.obj_id, { colour: swatch.value }));
    const name = el("span", { className: "obj-name", textContent: o.name || `object ${o.obj_id}`,
      title: (o.category ? o.category + " \u2014 " : "") + "double-click to rename" });
    const rename = el("button", { className: "rename-object", title: "Rename", textContent: "\u270e" });
    const hide = el("button", { className: "hide-toggle", title: o.hidden ? "Show (H)" : "Hide (H)",
      textContent: o.hidden ? "\u25cc" : "\u25c9" });
    const del = el("button", { className: "delete-object", title: "Delete (undoable)", textContent: "\u00d7" });
    const row = el("li", { className: "object-row" }, el("span", { className: "key", textContent: i < 9 ? i + 1 : "" }),
      swatch, name, rename, hide, del);
    row.dataset.objId = o.obj_id;
    row.classList.toggle("selected", o.obj_id === S.obj);
    row.classList.toggle("hidden-object", Boolean(o.hidden));
    row.addEventListener("click", () => selectObject(o.obj_id));
    const startRename = (e) => { e.stopPropagation(); beginRename(row, name, o); };
    name.addEventListener("dblclick", startRename);
    rename.addEventListener("click", startRename);
    hide.addEventListener("click", (e) => { e.stopPropagation(); patchObject(o.obj_id, { hidden: !o.hidden }); });
    del.addEventListener("click", (e) => { e.stopPropagation(); deleteObject(o.obj_id); });
    list.append(row);
  });
  if (!objs.length) list.append(el("li", { className: "empty", textContent: "No objects yet: click on the frame." }));
}
function beginRename(row, nameSpan, o) {
  const input = el("input", { type: "text", className: "obj-name-input", value: o.name || "", maxLength: 200 });
  nameSpan.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    const value = input.value.trim();
    if (save && value && value !== o.name) patchObject(o.obj_id, { name: value });
    else input.replaceWith(nameSpan);
  };
  input.addEventListener("keydown", (e) => {
    e.stopPropagation();
    if (e.key === "Enter") finish(true);
    if (e.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
  input.addEventListener("click", (e) => e.stopPropagation());
}

// ---------------------------------------------------------------------------------------------- timeline
function buildTimeline() {
  const box = $("#timeline");
  const objs = S.video.objects.filter((o) => !o.deleted && !o.hidden);
  const have = [...box.querySelectorAll(".timeline-strip")].map((c) => c.dataset.objId).join(",");
  if (have !== objs.map((o) => String(o.obj_id)).join(",") || box.dataset.names !== objs.map((o) => o.name + o.colour).join()) {
    box.replaceChildren();
    box.dataset.names = objs.map((o) => o.name + o.colour).join();
    for (const o of objs) {
      const strip = el("canvas", { className: "timeline-strip", title: `${o.name || "object " + o.obj_id}: click to seek` });
      strip.dataset.objId = o.obj_id;
      strip.addEventListener("pointerdown", (e) => seekFromStrip(e, strip));
      strip.addEventListener("pointermove", (e) => { if (e.buttons & 1) seekFromStrip(e, strip); });
      const sw = el("span", { className: "swatch" });
      sw.style.background = o.colour;
      box.append(el("div", { className: "timeline-row" },
        el("span", { className: "timeline-label" }, sw, o.name || `object ${o.obj_id}`), strip));
    }
    if (!objs.length) box.append(el("div", { className: "empty", textContent: "Each object's masks over the frames show here." }));
  }
  drawTimeline();
}
function seekFromStrip(e, strip) {
  const r = strip.getBoundingClientRect();
  const t = Math.floor(((e.clientX - r.left) / r.width) * S.video.num_frames);
  seek(Math.min(S.video.num_frames - 1, Math.max(0, t)));
}
const THUMB = 12;   // #frame-slider's thumb width (app.css)
function drawTimeline() {
  if (!S.video) return;
  const T = S.video.num_frames;
  // the slider spans the cell centres: its thumb sits over the current frame's cell
  const strip0 = document.querySelector(".timeline-strip"), slider = $("#frame-slider");
  const m = strip0 ? strip0.clientWidth / (2 * T) - THUMB / 2 : 0, margin = `${m}px`;
  if (slider.style.marginLeft !== margin) {
    slider.style.marginLeft = margin;
    slider.style.width = `calc(100% - ${2 * m}px)`;
  }
  const objects = (S.timeline && S.timeline.objects) || {};
  for (const strip of document.querySelectorAll(".timeline-strip")) {
    const w = Math.max(1, Math.round(strip.clientWidth * dpr())), h = Math.max(1, Math.round(strip.clientHeight * dpr()));
    if (strip.width !== w || strip.height !== h) { strip.width = w; strip.height = h; }
    const g = strip.getContext("2d");
    g.fillStyle = "#2a2c31";
    g.fillRect(0, 0, w, h);
    const colour = colourOf(Number(strip.dataset.objId));
    const tl = objects[strip.dataset.objId];
    const x = (t) => Math.floor((t / T) * w);
    const cell = (t) => Math.max(1, x(t + 1) - x(t));
    if (tl) {
      tl.frames.forEach((t, i) => {
        const area = tl.area[i], score = tl.score[i];
        if (area > 0) {
          // confidence as opacity: the score is a logit (null for hand-made masks: sure)
          g.globalAlpha = score === null || score === undefined ? 1 : 0.35 + 0.65 / (1 + Math.exp(-score));
          g.fillStyle = colour;
          g.fillRect(x(t), 0, cell(t), h);
        } else {
          g.globalAlpha = 1;
          g.fillStyle = "#5b5e66";
          g.fillRect(x(t), Math.round(h * 0.35), cell(t), Math.round(h * 0.3));
        }
      });
      g.globalAlpha = 1;
      const tick = Math.max(2, Math.round(h * 0.22));
      g.fillStyle = "#ff3b30";
      for (const t of tl.flags || []) g.fillRect(x(t), 0, cell(t), tick);
      g.fillStyle = "#111214";
      for (const t of tl.locked || []) g.fillRect(x(t), h - tick, cell(t), tick);
    }
    g.fillStyle = "#ffffff";
    g.fillRect(Math.min(w - 2, x(S.frame) + Math.floor(cell(S.frame) / 2) - 1), 0, Math.max(2, Math.round(dpr() * 1.5)), h);
  }
}
function nextFlagged(step) {
  const tl = S.timeline && S.obj !== null && S.timeline.objects[String(S.obj)];
  if (!tl || !(tl.flags || []).length) { setStatus("No flagged frames for this object"); return; }
  const flags = tl.flags.slice().sort((a, b) => a - b);
  const t = step > 0 ? flags.find((f) => f > S.frame) : flags.reverse().find((f) => f < S.frame);
  if (t === undefined) setStatus(step > 0 ? "No flagged frame after this one" : "No flagged frame before this one");
  else seek(t);
}

// ---------------------------------------------------------------------------------------------- frames
function seek(t) {
  if (!S.video) return;
  t = Math.min(S.video.num_frames - 1, Math.max(0, Math.round(t)));
  S.frame = t;
  $("#frame-slider").value = t;
  $("#frame-number").textContent = `${t} / ${S.video.num_frames}`;
  updateHash();
  render();
  drawTimeline();
}
let playTimer = null;
function togglePlay(on = !S.playing) {
  S.playing = on;
  $("#play").innerHTML = on ? "&#10074;&#10074;" : "&#9654;";
  clearTimeout(playTimer);
  if (!on) return;
  const step = () => {
    if (!S.playing || !S.video) return;
    if (S.frame >= S.video.num_frames - 1) { togglePlay(false); return; }
    // wait for the next frame's image, so playback never shows a gap
    const next = loadFrame(S.frame + 1, 0);
    const delay = 1000 / Math.min(30, S.video.fps || 10);
    const t0 = performance.now();
    next.promise.then(() => {
      playTimer = setTimeout(() => { if (S.playing) { seek(S.frame + 1); step(); } },
        Math.max(0, delay - (performance.now() - t0)));
    });
  };
  step();
}
function updateHash() {
  if (!S.video) return;
  const params = new URLSearchParams({ video: S.video.id, frame: S.frame });
  if (S.obj !== null) params.set("obj", S.obj);
  history.replaceState(null, "", "#" + params.toString());
}

// ---------------------------------------------------------------------------------------------- tools
const TOOL_HINTS = {
  click: "Left click adds to the object; right click or Shift+click removes. Clicks on a frame refine its mask.",
  box: "Drag a box around the object; it replaces the frame's prompt.",
  brush: "Drag to paint the mask. Painted frames are locked: propagation never overwrites them.",
  eraser: "Drag to erase from the mask. Erased frames are locked: propagation never overwrites them.",
};
function setTool(tool) {
  S.tool = tool;
  for (const b of document.querySelectorAll(".tool")) b.classList.toggle("active", b.dataset.tool === tool);
  $("#viewer").classList.toggle("brush", tool === "brush" || tool === "eraser");
  $("#tool-hint").textContent = TOOL_HINTS[tool];
  render();
}
function setRadius(r) {
  S.radius = Math.min(100, Math.max(1, Math.round(r)));
  $("#brush-size").value = S.radius;
  $("#brush-size-value").textContent = S.radius;
  render();
}

// ---------------------------------------------------------------------------------------------- shortcuts
// one table drives both the key handler and the help overlay, so they cannot drift apart
const SHORTCUTS = [
  { keys: ["ArrowLeft"], help: "Previous frame", run: () => seek(S.frame - 1) },
  { keys: ["ArrowRight"], help: "Next frame", run: () => seek(S.frame + 1) },
  { keys: ["Shift+ArrowLeft"], help: "10 frames back", run: () => seek(S.frame - 10) },
  { keys: ["Shift+ArrowRight"], help: "10 frames forward", run: () => seek(S.frame + 10) },
  { keys: ["Home"], help: "First frame", run: () => seek(0) },
  { keys: ["End"], help: "Last frame", run: () => seek(S.video.num_frames - 1) },
  { keys: ["Space"], help: "Play / pause (hold and drag: pan)", run: null },
  { keys: ["f"], help: "Next flagged frame of the selected object", run: () => nextFlagged(1) },
  { keys: ["Shift+f"], help: "Previous flagged frame", run: () => nextFlagged(-1) },
  { keys: ["c"], help: "Click tool", run: () => setTool("click") },
  { keys: ["b"], help: "Box tool", run: () => setTool("box") },
  { keys: ["p"], help: "Brush", run: () => setTool("brush") },
  { keys: ["e"], help: "Eraser", run: () => setTool("eraser") },
  { keys: ["["], help: "Smaller brush", run: () => setRadius(S.radius / 1.25) },
  { keys: ["]"], help: "Larger brush", run: () => setRadius(S.radius * 1.25 + 0.5) },
  { keys: ["n"], help: "New object", run: () => addObject() },
  { keys: ["1 \u2026 9"], match: (e) => /^[1-9]$/.test(e.key) && !e.ctrlKey && !e.metaKey && !e.altKey,
    help: "Select object 1 \u2026 9", run: (e) => selectNth(Number(e.key)) },
  { keys: ["h"], help: "Hide / show the selected object", run: () => toggleHidden() },
  { keys: ["Delete"], help: "Clear the selected object's prompt and mask on this frame", run: () => clearFrame() },
  { keys: ["m"], help: "Show / hide prompt markers", run: () => setShowPrompts(!S.showPrompts) },
  { keys: ["Ctrl+z"], help: "Undo", run: () => undoRedo("undo") },
  { keys: ["Ctrl+Shift+z", "Ctrl+y"], help: "Redo", run: () => undoRedo("redo") },
  { keys: ["."], help: "Propagate forward", run: () => propagate("forward") },
  { keys: [","], help: "Propagate backward", run: () => propagate("backward") },
  { keys: ["/"], help: "Propagate both ways", run: () => propagate("both") },
  { keys: ["Escape"], help: "Cancel the propagation / close this help", run: () => escape() },
  { keys: ["?"], help: "This help", run: () => toggleHelp(true) },
  { keys: ["+", "-", "0"], help: "Zoom in / out / fit", run: (e) => zoomKey(e.key) },
];
const SYMBOLS = new Set(["?", "+", "-", "=", "/", ".", ",", "[", "]", "0"]);
function parseCombo(combo) {
  const parts = combo.split("+").filter(Boolean);
  const key = combo.endsWith("++") || combo === "+" ? "+" : parts.pop();
  return { key, ctrl: parts.includes("Ctrl"), shift: parts.includes("Shift") };
}
function matches(combo, e) {
  const c = parseCombo(combo);
  const key = c.key === "Space" ? " " : c.key;
  if (Boolean(e.ctrlKey || e.metaKey) !== c.ctrl || e.altKey) return false;
  // a symbol's shift state belongs to the keyboard layout ('?' is Shift+/ on some, not on others)
  if (SYMBOLS.has(key)) return e.key === key || (key === "+" && e.key === "=");
  return e.key.toLowerCase() === key.toLowerCase() && e.shiftKey === c.shift;
}
function findShortcut(e) {
  return SHORTCUTS.find((s) => (s.match ? s.match(e) : s.keys.some((k) => matches(k, e))));
}
function keyLabel(combo) {
  const names = { ArrowLeft: "\u2190", ArrowRight: "\u2192", Escape: "Esc", Delete: "Del" };
  if (combo === "+") return "+";
  return combo.split("+").map((k) => names[k] || (k.length === 1 ? k.toUpperCase() : k)).join("+");
}
function buildHelp() {
  const row = (keys, text, cls) => el("div", { className: cls }, el("span", { className: "keys" }, ...keys), el("span", { textContent: text }));
  $("#shortcut-table").replaceChildren(...SHORTCUTS.map((s) => row(
    s.keys.flatMap((k, i) => [i ? " " : "", el("kbd", { textContent: keyLabel(k) })]), s.help, "shortcut")));
  const mouse = [
    ["Left click", "Click tool: add the point to the object (positive)"],
    ["Right / Shift+click", "Click tool: remove (negative point)"],
    ["Drag", "Box tool: a box; brush / eraser: paint (sent on release)"],
    ["Wheel", "Zoom around the cursor"],
    ["Middle drag, Space+drag", "Pan"],
    ["Click a timeline strip", "Seek to that frame"],
  ];
  $("#mouse-table").replaceChildren(...mouse.map(([k, d]) => row([el("kbd", { textContent: k })], d, "mouse")));
}
function toggleHelp(on) { $("#help-overlay").hidden = !on; }
function escape() {
  if (!$("#help-overlay").hidden) toggleHelp(false);
  else if (gesture) { gesture = null; render(); }
  else cancelJob();
}
function zoomKey(k) {
  if (k === "0") resetZoom();
  else setZoom(S.zoom * (k === "-" ? 1 / 1.25 : 1.25));
}
function selectNth(n) {
  const objs = S.video.objects.filter((o) => !o.deleted);
  if (objs[n - 1]) selectObject(objs[n - 1].obj_id);
}
function toggleHidden() {
  const o = S.video.objects.find((x) => x.obj_id === S.obj);
  if (o) patchObject(o.obj_id, { hidden: !o.hidden });
}
function setShowPrompts(on) {
  S.showPrompts = on;
  $("#show-prompts").checked = on;
  render();
}
function onKeyDown(e) {
  const typing = e.target.matches && e.target.matches("input[type=text], textarea, select");
  if (typing) return;
  if (e.key === " " && !e.repeat) {
    if (!S.video) return;
    spaceDown = true; spaceUsed = false;
    $("#viewer").classList.add("space");
    e.preventDefault();
    return;
  }
  if (!S.video && e.key !== "?" && e.key !== "Escape") return;
  if (!$("#help-overlay").hidden && e.key !== "Escape" && e.key !== "?") return;
  const s = findShortcut(e);
  if (!s || !s.run) return;
  e.preventDefault();
  s.run(e);
}
function onKeyUp(e) {
  if (e.key !== " " || !spaceDown) return;
  spaceDown = false;
  $("#viewer").classList.remove("space");
  if (!spaceUsed) togglePlay();   // a tap plays / pauses; a hold was a pan
}

// ---------------------------------------------------------------------------------------------- start view
let currentProjects = [];
let libraryPath = "";
async function showStart() {
  S.video = null;
  togglePlay(false);
  $("#editor-view").hidden = true;
  $("#start-view").hidden = false;
  document.body.classList.remove("editing");
  for (const n of document.querySelectorAll(".editor-only")) n.hidden = true;
  $("#video-title").textContent = S.info ? `${S.info.data} \u2014 model ${S.info.model}` : "";
  document.title = "samstream app";
  setStatus("Ready");
  await Promise.all([loadProjects(), loadLibrary(libraryPath)]);
}
async function loadProjects(selectId) {
  try { currentProjects = await api("GET", "/api/projects"); } catch { return; }
  const list = $("#projects"), target = $("#target-project");
  const keep = selectId || Number(target.value) || (currentProjects[0] && currentProjects[0].id);
  list.replaceChildren();
  target.replaceChildren();
  if (!currentProjects.length) list.append(el("li", { className: "empty", textContent: "No projects yet: create one." }));
  for (const p of currentProjects) {
    target.append(el("option", { value: p.id, textContent: p.name }));
    const videos = el("ul", { className: "videos" });
    const head = el("li", { className: "project" }, el("span", { className: "name", textContent: p.name }),
      el("span", { className: "meta", textContent: `${p.num_videos} video${p.num_videos === 1 ? "" : "s"}` }));
    head.dataset.projectId = p.id;
    list.append(head, videos);
    api("GET", `/api/projects/${p.id}`, undefined, { quiet: true }).then((full) => {
      for (const v of full.videos) {
        const a = el("a", { href: `#video=${v.id}`, className: "name", textContent: v.name });
        const li = el("li", { className: "video" }, a,
          el("span", { className: "meta", textContent: `${v.num_frames} frames \u00b7 ${v.width}\u00d7${v.height}` }));
        li.dataset.videoId = v.id;
        videos.append(li);
      }
    }).catch(() => {});
  }
  if (keep) target.value = keep;
}
async function loadLibrary(path) {
  let res;
  try { res = await api("GET", "/api/library?path=" + encodeURIComponent(path)); } catch { return; }
  libraryPath = res.path || "";
  const crumbs = $("#library-path");
  crumbs.replaceChildren();
  const parts = libraryPath ? libraryPath.split("/") : [];
  const link = (label, p) => {
    const a = el("a", { textContent: label });
    a.addEventListener("click", () => loadLibrary(p));
    return a;
  };
  crumbs.append(link(S.info ? S.info.data : "data", ""));
  parts.forEach((part, i) => crumbs.append(el("span", { textContent: " / " }), link(part, parts.slice(0, i + 1).join("/"))));
  const list = $("#library");
  list.replaceChildren();
  if (!res.entries.length) list.append(el("li", { className: "empty", textContent: "Empty folder." }));
  for (const e of res.entries) {
    const li = el("li", { className: "entry" }, el("span", { className: "kind", textContent: e.kind }),
      el("span", { className: "name", textContent: e.name }));
    li.dataset.path = e.path;
    if (e.kind === "dir") li.addEventListener("dblclick", () => loadLibrary(e.path));
    if (e.kind === "dir") li.append(el("button", { textContent: "Open", onclick: () => loadLibrary(e.path) }));
    if (e.kind === "video" || e.kind === "frames") {
      li.append(el("button", { className: "add-video", textContent: "Add to project", onclick: () => addVideo(e.path) }));
    }
    list.append(li);
  }
}
async function addVideo(path) {
  let pid = Number($("#target-project").value);
  await busy("Adding the video", async () => {
    try {
      if (!pid) pid = (await api("POST", "/api/projects", { name: "Project 1" })).id;
      const v = await api("POST", `/api/projects/${pid}/videos`, { path });
      setStatus(`Added ${v.name}`);
      await loadProjects(pid);
    } catch { /* shown */ }
  });
}
async function upload(file) {
  const form = new FormData();
  form.append("file", file);
  await busy(`Uploading ${file.name}`, async () => {
    try {
      const res = await api("POST", "/api/upload", form);
      setStatus(`Uploaded ${res.path}`);
      await loadLibrary(res.path.split("/").slice(0, -1).join("/"));
    } catch { /* shown */ }
  });
}

// ---------------------------------------------------------------------------------------------- editor view
async function openVideo(vid, frame, obj) {
  $("#start-view").hidden = true;
  $("#editor-view").hidden = false;
  for (const n of document.querySelectorAll(".editor-only")) n.hidden = false;
  if (!S.video || S.video.id !== vid) {
    frames.clear();
    overlays.clear();
    shown = { frame: null, bitmap: null };
    S.markers = new Map();
    S.timeline = null;
    S.job = null;
    resetZoom();
  }
  S.video = { id: vid, objects: [], num_frames: 1, width: 1, height: 1 };
  await busy("Opening the video", async () => {
    try {
      await refreshVideo();
    } catch (e) {
      S.video = null;
      showError(e.message);
      return;
    }
    const v = S.video;
    $("#video-title").textContent = v.name;
    document.title = `${v.name} \u2014 samstream app`;
    $("#frame-slider").max = v.num_frames - 1;
    const live = v.objects.filter((o) => !o.deleted);
    S.obj = live.some((o) => o.obj_id === obj) ? obj : live.length ? live[0].obj_id : null;
    renderObjects();
    resizeCanvas();
    seek(Number.isFinite(frame) ? frame : 0);
    await Promise.all([refreshTimeline(), refreshMarkers()]);
    if (jobRunning()) pollJob();
  });
}
function route() {
  const params = new URLSearchParams(location.hash.slice(1));
  const vid = parseInt(params.get("video"), 10);
  if (!Number.isInteger(vid)) return showStart();
  const frame = parseInt(params.get("frame"), 10), obj = parseInt(params.get("obj"), 10);
  if (S.video && S.video.id === vid && S.video.name) {   // our own replaceState, or a hand edit of the hash
    if (Number.isInteger(obj) && obj !== S.obj) selectObject(obj);
    if (Number.isInteger(frame) && frame !== S.frame) seek(frame);
    return;
  }
  return openVideo(vid, Number.isInteger(frame) ? frame : 0, Number.isInteger(obj) ? obj : null);
}

// for the browser tests: true when nothing is pending and the canvas shows the current state
window.samstreamApp = {
  state: S,
  // for extensions (model.js)
  api, vurl, write, afterWrite, render, busy, setStatus, showError, selectObject, eventToVideo, drawHooks,
  shortcuts: SHORTCUTS, buildHelp,
  overlayDrawn() { return { ...overlayDrawn }; },   // {frame, epoch, at: performance.now() of its first draw}
  isIdle() {
    if (!S.video || !S.video.name) return false;
    if (inFlight || imageFetches || imageQueue.length || queuedWrites || busyCount || renderQueued || polling) return false;
    const f = frames.get(`${S.frame}@${requestSize()}`), o = overlays.get(`${S.frame}@${requestSize()}`);
    return Boolean(f && f.bitmap && shown.frame === S.frame && o && o.bitmap && o.epoch === S.epoch);
  },
  videoToClient(x, y) {
    const r = canvas().getBoundingClientRect(), v = viewTransform();
    return [r.left + (v.offX + x * v.scale) / dpr(), r.top + (v.offY + y * v.scale) / dpr()];
  },
};

function wire() {
  const c = canvas();
  c.addEventListener("pointerdown", onPointerDown);
  c.addEventListener("pointermove", onPointerMove);
  c.addEventListener("pointerup", onPointerUp);
  c.addEventListener("pointercancel", () => { gesture = null; render(); });
  c.addEventListener("pointerleave", () => { hover = null; render(); });
  c.addEventListener("wheel", onWheel, { passive: false });
  c.addEventListener("contextmenu", (e) => e.preventDefault());
  c.addEventListener("auxclick", (e) => e.preventDefault());
  new ResizeObserver(resizeCanvas).observe($("#viewer"));
  new ResizeObserver(drawTimeline).observe($("#timeline"));
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  window.addEventListener("hashchange", route);
  window.addEventListener("blur", () => { spaceDown = false; $("#viewer").classList.remove("space"); });

  $("#undo").addEventListener("click", () => undoRedo("undo"));
  $("#redo").addEventListener("click", () => undoRedo("redo"));
  $("#propagate-forward").addEventListener("click", () => propagate("forward"));
  $("#propagate-backward").addEventListener("click", () => propagate("backward"));
  $("#propagate-both").addEventListener("click", () => propagate("both"));
  $("#cancel").addEventListener("click", cancelJob);
  $("#export").addEventListener("click", exportMasks);
  $("#help").addEventListener("click", () => toggleHelp($("#help-overlay").hidden));
  $("#help-close").addEventListener("click", () => toggleHelp(false));
  $("#help-overlay").addEventListener("click", (e) => { if (e.target.id === "help-overlay") toggleHelp(false); });
  $("#add-object").addEventListener("click", addObject);
  for (const b of document.querySelectorAll(".tool")) b.addEventListener("click", () => setTool(b.dataset.tool));
  $("#brush-size").addEventListener("input", (e) => setRadius(Number(e.target.value)));
  $("#show-prompts").addEventListener("change", (e) => setShowPrompts(e.target.checked));
  $("#frame-slider").addEventListener("input", (e) => seek(Number(e.target.value)));
  $("#play").addEventListener("click", () => togglePlay());
  $("#new-project-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("#new-project-name"), name = input.value.trim();
    if (!name) return;
    try {
      const p = await api("POST", "/api/projects", { name });
      input.value = "";
      setStatus(`Created project ${p.name}`);
      await loadProjects(p.id);
    } catch { /* shown */ }
  });
  $("#upload").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); e.target.value = ""; });
  // buttons keep no keyboard focus, so Space and the arrows always reach the shortcuts
  for (const b of document.querySelectorAll("button")) b.addEventListener("mouseup", () => b.blur());
}

async function main() {
  buildHelp();
  wire();
  setTool("click");
  setRadius(8);
  try { S.info = await api("GET", "/api/info"); } catch { /* shown */ }
  await route();
}
main();

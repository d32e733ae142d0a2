"""Click-to-mask latency of the annotation app in a real browser, with the embedded model.

    .venv/bin/python -m benchmarks.app_latency                     # 50 clicks on the demo clip
    .venv/bin/python -m benchmarks.app_latency --clicks 10 --json out.json

A real `samstream app` server process (embedded model, CPU) on a data folder holding the shipped demo clip
(samstream/assets/demo.mp4, 60 frames, 320x240), and headless Chromium (Debian's, through Playwright, as
tests/test_app_browser.py launches it) on its page. Each click goes to another frame (frame 13*i mod 60) and
object (three, in turn), at a random point of the frame; it is timed in the page from the pointerdown event to
the first canvas draw of that frame's new overlay (`samstreamApp.overlayDrawn()`, app.js), and until the page
is idle again (state, timeline and markers read back too). For comparison, the server-side part: the click
request's time in the browser's Resource Timing (request sent to response received), and the same clicks sent
straight to the HTTP API from Python on a fresh video. The first click of a video opens its model session and
is made before the timed ones. The machine's load average is recorded before and after (a shared machine: the
figures are measured under that load). Raw results: benchmarks/results/app-latency-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np

from benchmarks.app_long_video import CLICK, DEMO_CLIP, free_port, load, save_results, start_server
from tests.browser import launch

W, H, T = 320, 240, 60  # the demo clip
OBJECTS = 3


def plan(n: int, seed: int = 0) -> list[dict]:
    """n clicks: each on another frame (13 is coprime to 60) and object, at a random point inside the frame."""
    rng = random.Random(seed)
    return [{"frame": (13 * i + 1) % T, "obj_id": 1 + i % OBJECTS,
             "x": round(rng.uniform(10, W - 10), 1), "y": round(rng.uniform(10, H - 10), 1)} for i in range(n)]


def stats(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"median_ms": round(float(np.median(v)), 1), "p95_ms": round(float(np.percentile(v, 95)), 1),
            "min_ms": round(float(v.min()), 1), "max_ms": round(float(v.max()), 1), "n": int(v.size)}


def new_video(c: httpx.Client, project: int) -> int:
    """The demo clip as a fresh video with OBJECTS objects, its model session opened by one click."""
    vid = c.post(f"/api/projects/{project}/videos", json={"path": "demo.mp4"}).raise_for_status().json()["id"]
    for _ in range(OBJECTS):
        c.post(f"/api/videos/{vid}/objects", json={}).raise_for_status()
    c.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": CLICK[0], "y": CLICK[1]}
           ).raise_for_status()
    return vid


WAIT_IDLE = "window.samstreamApp && samstreamApp.isIdle()"
STAMP = """() => {  // the pointer events' times, stamped in the page before the app's own handlers run
  const c = document.querySelector('#frame-canvas');
  c.addEventListener('pointerdown', () => { window.__down = performance.now(); }, { capture: true });
  c.addEventListener('pointerup', () => { window.__up = performance.now(); }, { capture: true });
}"""
MEASURE = """(frame) => {  // the times of the pointer events, the click and overlay requests, the overlay's draw
  const d = samstreamApp.overlayDrawn(), all = performance.getEntriesByType('resource');
  const last = (f) => { const r = all.filter(f); return r[r.length - 1] || null; };
  const c = last((e) => e.name.includes('/click')), o = last((e) => e.name.includes(`/overlay/${frame}?`)
    && e.name.includes(`e=${d.epoch}`));
  return { down: window.__down, up: window.__up, drawn: d.at,
           click: c && [c.requestStart, c.responseEnd], overlay: o && [o.requestStart, o.responseEnd] };
}"""


def browser_clicks(url: str, vid: int, clicks: list[dict]) -> list[dict]:
    """Each click made with the mouse in headless Chromium, timed in the page."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1).new_page()
            page.set_default_timeout(120_000)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/#video={vid}&frame=0&obj=1")
            page.wait_for_function(WAIT_IDLE)
            page.evaluate(STAMP)
            for k in clicks:
                page.evaluate(f"location.hash = 'video={vid}&frame={k['frame']}&obj={k['obj_id']}'")
                page.wait_for_function(f"samstreamApp.state.frame === {k['frame']} && "
                                       f"samstreamApp.state.obj === {k['obj_id']} && samstreamApp.isIdle()")
                epoch = page.evaluate("samstreamApp.state.epoch")
                page.evaluate("performance.clearResourceTimings()")
                page.mouse.click(*page.evaluate(f"samstreamApp.videoToClient({k['x']}, {k['y']})"))
                page.wait_for_function(f"(() => {{ const d = samstreamApp.overlayDrawn(); "
                                       f"return d.frame === {k['frame']} && d.epoch > {epoch}; }})()", polling=5)
                m = page.evaluate(MEASURE, k["frame"])
                page.wait_for_function(WAIT_IDLE, polling=5)
                idle = page.evaluate("performance.now()")
                t0 = m["down"]
                rel = {f"{name}_{end}_ms": round(v[i] - t0, 1) for name in ("click", "overlay") if m[name]
                       for i, end in enumerate(("sent", "answered")) for v in [m[name]]}
                out.append({**k, "to_overlay_ms": round(m["drawn"] - t0, 1), "to_idle_ms": round(idle - t0, 1),
                            "up_ms": round(m["up"] - t0, 1), **rel})
            if errors:
                raise RuntimeError(f"JavaScript errors in the page: {errors}")
        finally:
            browser.close()
    return out


def api_clicks(c: httpx.Client, vid: int, clicks: list[dict]) -> list[float]:
    """The same clicks straight to the HTTP API: the server's click route as a script sees it (ms)."""
    times = []
    for k in clicks:
        t0 = time.perf_counter()
        c.post(f"/api/videos/{vid}/click", json=k).raise_for_status()
        times.append(1000 * (time.perf_counter() - t0))
    return times


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clicks", type=int, default=50)
    ap.add_argument("--json", type=Path, default=None,
                    help="where to write the results (default: benchmarks/results/app-latency-<date>.json)")
    args = ap.parse_args(argv)
    clicks = plan(args.clicks)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        shutil.copy(DEMO_CLIP, data / "demo.mp4")
        port = free_port()
        proc = start_server(data, port)
        try:
            url = f"http://127.0.0.1:{port}"
            c = httpx.Client(base_url=url, timeout=120)
            project = c.post("/api/projects", json={"name": "latency"}).raise_for_status().json()["id"]
            res = {"date": datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                   "load_before": load(), "clip": "samstream/assets/demo.mp4", "model": "built-in",
                   "viewport": [1280, 800]}
            per_click = browser_clicks(url, new_video(c, project), clicks)
            server = api_clicks(c, new_video(c, project), clicks)
            res["load_after"] = load()
        finally:
            proc.kill()
            proc.wait()
    res["browser_to_overlay"] = stats([k["to_overlay_ms"] for k in per_click])
    res["browser_to_idle"] = stats([k["to_idle_ms"] for k in per_click])
    res["click_request_in_browser"] = stats([k["click_answered_ms"] - k["click_sent_ms"] for k in per_click
                                             if "click_sent_ms" in k])
    res["overlay_request_in_browser"] = stats([k["overlay_answered_ms"] - k["overlay_sent_ms"] for k in per_click
                                               if "overlay_sent_ms" in k])
    res["click_route_from_python"] = stats(server)
    res["clicks"] = per_click
    print(json.dumps({k: v for k, v in res.items() if k != "clicks"}, indent=1))
    save_results(res, args.json, "app-latency")
    return res


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()

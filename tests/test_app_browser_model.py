"""The model in the loop in the browser (static/model.js): proposals drawn on the canvas (its pixels), a click on
one accepts it as an object, and the model picker lists the models. Real uvicorn, headless Chromium.

Skipped when Playwright or Chromium is missing, unless SAMSTREAM_REQUIRE_BROWSER=1. Screenshots go to
test-artifacts/app/.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.browser import ARTIFACTS, call, require_browser

require_browser()

from samstream.app.server import create_app  # noqa: E402
from samstream.io.rle import decode_rle  # noqa: E402
from tests.helpers import demo_clip, live_server  # noqa: E402

W, H = 320, 240
YELLOW = np.array([255, 212, 0], np.float32)  # model.js's proposal outline


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("appdata")
    demo_clip(data / "clip", n=2, step=1)
    with live_server(create_app(data)) as url:  # the embedded model
        pid = call(url, "/api/projects", "POST", {"name": "p"})["id"]
        yield {"url": url, "project": pid}


def wait_idle(page):
    page.wait_for_function("window.samstreamApp && samstreamApp.isIdle()")


def shot(page, name) -> np.ndarray:
    png = page.locator("#frame-canvas").screenshot()
    (ARTIFACTS / name).write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def yellow(img) -> np.ndarray:
    return np.linalg.norm(img - YELLOW, axis=2) < 40


def test_proposals_are_drawn_and_a_click_accepts_one(page, server):
    url = server["url"]
    vid = call(url, f"/api/projects/{server['project']}/videos", "POST", {"path": "clip"})["id"]
    page.goto(f"{url}/#video={vid}")
    wait_idle(page)
    page.mouse.move(5, 5)
    before = shot(page, "20-before-proposals.png")
    page.keyboard.press("a")
    page.wait_for_function("document.querySelector('#proposals').classList.contains('active')")
    wait_idle(page)
    shown = shot(page, "21-proposals.png")
    assert yellow(shown).sum() > yellow(before).sum() + 200, "no proposal outlines on the canvas"

    found = call(url, f"/api/videos/{vid}/proposals?frame=0")["proposals"]
    assert found
    masks = [decode_rle(p["rle"]) for p in found]
    # a pixel whose smallest covering proposal is one of them (the one a click there picks): its centre of mass
    areas = np.array([m.sum() for m in masks])
    target = int(np.argmin(areas))
    ys, xs = np.nonzero(masks[target])
    k = int(np.argmin(np.hypot(xs - xs.mean(), ys - ys.mean())))
    x, y = float(xs[k]) + 0.5, float(ys[k]) + 0.5
    page.mouse.click(*page.evaluate(f"samstreamApp.videoToClient({x}, {y})"))
    page.wait_for_function("samstreamApp.state.video.objects.length === 1")
    wait_idle(page)
    page.mouse.move(5, 5)
    after = shot(page, "22-proposal-accepted.png")
    stored = call(url, f"/api/videos/{vid}/masks/0")["objects"]
    assert list(stored) == ["1"] and np.array_equal(decode_rle(stored["1"]["rle"]), masks[target])
    assert found[target]["id"] not in [p["id"] for p in call(url, f"/api/videos/{vid}/proposals")["proposals"]]
    # the object's overlay is drawn where the proposal was
    colour = page.evaluate("samstreamApp.state.video.objects[0].colour")
    rgb = np.array([int(colour[i: i + 2], 16) for i in (1, 3, 5)], np.float32)
    cx, cy = page.evaluate(f"samstreamApp.videoToClient({x}, {y})")
    box = page.locator("#frame-canvas").bounding_box()
    px, py = int(cx - box["x"]), int(cy - box["y"])
    patch = after[py - 2: py + 3, px - 2: px + 3].reshape(-1, 3)
    was = before[py - 2: py + 3, px - 2: px + 3].reshape(-1, 3)
    assert np.linalg.norm(patch - rgb, axis=1).mean() < np.linalg.norm(was - rgb, axis=1).mean() - 20

    page.keyboard.press("Escape")  # rejects the rest
    page.wait_for_function("!document.querySelector('#proposals').classList.contains('active')")
    wait_idle(page)
    assert call(url, f"/api/videos/{vid}/proposals")["proposals"] == []
    assert page.evaluate("samstreamApp.state.video.objects.length") == 1


def test_the_model_picker_lists_the_models(page, server):
    page.goto(server["url"] + "/")
    page.wait_for_function("document.querySelectorAll('#model-picker option').length > 1")
    values = page.eval_on_selector_all("#model-picker option", "os => os.map(o => o.value)")
    assert values[0] == "built-in" and "sam2.1_hiera_tiny" in values
    assert page.locator("#model-picker").input_value() == "built-in"

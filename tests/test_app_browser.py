"""The annotation app's browser UI, end to end: a real uvicorn server with the embedded model, driven through
headless Chromium (Playwright). The checks look at the pixels of canvas screenshots, not only at the DOM.

Skipped when Playwright or Chromium is missing, unless SAMSTREAM_REQUIRE_BROWSER=1 (CI: there it must run).
Screenshots are saved to test-artifacts/app/.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser import ARTIFACTS, call, require_browser

require_browser()

from samstream.app.server import create_app  # noqa: E402
from samstream.io.rle import decode_rle  # noqa: E402
from samstream.video.sources import open_source  # noqa: E402
from tests.helpers import live_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "samstream" / "assets" / "demo.mp4"
NUM_FRAMES = 12
W, H = 320, 240
OBJ1 = (179, 40)     # on frame 0 of demo.mp4: inside object 1 (the ellipse)
FAR = (20, 200)      # background, far from every object on frame 0


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server on a data dir holding the first 12 frames of the demo clip as a PNG folder."""
    data = tmp_path_factory.mktemp("appdata")
    clip = data / "clip"
    clip.mkdir()
    src = open_source(DEMO)
    for t in range(NUM_FRAMES):
        Image.fromarray(src.read(t)).save(clip / f"{t:05d}.png")
    src.close()
    app = create_app(data)  # the embedded model
    with live_server(app) as url:
        project = call(url, "/api/projects", "POST", {"name": "browser tests"})
        yield {"url": url, "project": project["id"], "data": data}


# ------------------------------------------------------------------------------------------ helpers
def new_video(server) -> int:
    """The clip added to the project once more: a fresh video (nothing annotated) for one test."""
    return call(server["url"], f"/api/projects/{server['project']}/videos", "POST", {"path": "clip"})["id"]


def wait_idle(page):
    """Until every request is answered and the canvas shows the current frame with its current overlay."""
    page.wait_for_function("window.samstreamApp && samstreamApp.isIdle()")


def open_video(page, server, vid, extra=""):
    page.goto(f"{server['url']}/#video={vid}{extra}")
    wait_idle(page)


def canvas_shot(page, name=None) -> np.ndarray:
    """The canvas as (h, w, 3) float32 RGB; saved under test-artifacts/app/ when named."""
    png = page.locator("#frame-canvas").screenshot()
    if name:
        (ARTIFACTS / name).write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def to_canvas(page, x, y) -> tuple[float, float]:
    """Video pixel -> canvas CSS pixel at zoom 1: the frame is fitted into the canvas and centred."""
    box = page.locator("#frame-canvas").bounding_box()
    s = min(box["width"] / W, box["height"] / H)
    return (box["width"] - W * s) / 2 + x * s, (box["height"] - H * s) / 2 + y * s


def to_page(page, x, y) -> tuple[float, float]:
    box = page.locator("#frame-canvas").bounding_box()
    cx, cy = to_canvas(page, x, y)
    return box["x"] + cx, box["y"] + cy


def ring(img, centre, r0, r1) -> np.ndarray:
    """The pixels of img between radii r0 and r1 (canvas px) of centre: (n, 3). The ring leaves out the prompt
    marker drawn on the point itself."""
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    d = np.hypot(xx - centre[0], yy - centre[1])
    return img[(d >= r0) & (d <= r1)]


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i: i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def colour_distance(pixels, colour) -> float:
    return float(np.linalg.norm(pixels - colour, axis=1).mean())


def click_video(page, x, y, **kw):
    page.mouse.click(*to_page(page, x, y), **kw)
    wait_idle(page)


def move_off_canvas(page):
    page.mouse.move(5, 5)   # the top bar: no brush cursor, no hover on the canvas


def object_colour(page, obj_id) -> np.ndarray:
    colour = page.evaluate(f"samstreamApp.state.video.objects.find(o => o.obj_id === {obj_id}).colour")
    return hex_rgb(colour)


def annotated(page, server) -> int:
    """A fresh video opened in the page with object 1 clicked at OBJ1 on frame 0."""
    vid = new_video(server)
    open_video(page, server, vid)
    click_video(page, *OBJ1)
    assert page.locator(".object-row[data-obj-id='1']").count() == 1
    return vid


# ------------------------------------------------------------------------------------------ tests
def test_start_view_lists_projects_and_opens_a_video(page, server):
    vid = new_video(server)
    page.goto(server["url"] + "/")
    page.locator(f"#projects li.video[data-video-id='{vid}'] a").click()
    wait_idle(page)
    assert f"video={vid}" in page.url
    assert page.locator("#frame-number").inner_text() == f"0 / {NUM_FRAMES}"
    assert page.locator("#library li[data-path='clip'] .add-video").count() == 1   # the library browser
    img = canvas_shot(page)
    assert img.std() > 10   # the frame is drawn, not a blank canvas


def test_click_draws_the_mask_in_the_objects_colour(page, server):
    vid = new_video(server)
    open_video(page, server, vid)
    before = canvas_shot(page, "00-frame.png")
    click_video(page, *OBJ1)   # no object yet: the click makes object 1 and prompts it
    after = canvas_shot(page, "01-click.png")
    assert page.locator(".object-row.selected").get_attribute("data-obj-id") == "1"
    assert after.shape == before.shape   # the canvas keeps its size as the object's timeline strip appears
    colour = object_colour(page, 1)
    c = to_canvas(page, *OBJ1)
    near_before, near_after = ring(before, c, 10, 22), ring(after, c, 10, 22)
    assert np.abs(near_after - near_before).mean() > 10, "the overlay did not change the pixels at the click"
    assert colour_distance(near_after, colour) < colour_distance(near_before, colour) - 20
    far = to_canvas(page, *FAR)
    assert np.abs(ring(after, far, 0, 15) - ring(before, far, 0, 15)).mean() < 1, "pixels far away changed"
    assert page.locator("#undo").is_enabled()
    assert f"video={vid}" in page.url and "obj=1" in page.url


def test_propagate_fills_the_timeline_and_the_last_frame(page, server):
    vid = annotated(page, server)
    page.locator("#propagate-forward").click()
    page.wait_for_function("""() => { const p = document.querySelector('#progress'), j = samstreamApp.state.job;
        return j && j.state !== 'running' && p.max === j.total && p.value === p.max && samstreamApp.isIdle(); }""")
    assert page.evaluate("samstreamApp.state.job.state") == "done"
    assert page.evaluate("samstreamApp.state.job.total") == NUM_FRAMES
    canvas_shot(page, "02-propagated.png")
    # every frame's cell of the object's strip is drawn in its colour (red channel dominant for #800000-ish)
    strip = page.locator(".timeline-strip[data-obj-id='1']")
    png = strip.screenshot()
    (ARTIFACTS / "02-timeline.png").write_bytes(png)
    tl = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)
    colour = object_colour(page, 1)
    bg = np.array([42, 44, 49], np.float32)   # the strip's empty background
    h, w = tl.shape[:2]
    for t in range(NUM_FRAMES):
        px = tl[h // 2, int((t + 0.25) / NUM_FRAMES * w)]   # off the cell's centre (the current-frame line)
        assert np.linalg.norm(px - bg) > 20, f"frame {t} has no mask on the timeline"
        assert np.linalg.norm(px - colour) < np.linalg.norm(bg - colour), f"frame {t} not in the object's colour"
    # the last frame: the propagated mask is drawn over the frame
    page.keyboard.press("End")
    wait_idle(page)
    assert page.locator("#frame-number").inner_text() == f"{NUM_FRAMES - 1} / {NUM_FRAMES}"
    shown = canvas_shot(page, "02-last-frame.png")
    masks = call(server["url"], f"/api/videos/{vid}/masks/{NUM_FRAMES - 1}")
    mask = decode_rle(masks["objects"]["1"]["rle"])   # (H, W) bool at video resolution
    assert mask.sum() > 100
    ys, xs = np.nonzero(mask)
    inside = [(x, y) for x, y in zip(xs[:: max(1, len(xs) // 40)], ys[:: max(1, len(ys) // 40)])]
    page.keyboard.press("h")   # hide the object: the bare frame
    wait_idle(page)
    bare = canvas_shot(page)
    pts = np.array([to_canvas(page, x + 0.5, y + 0.5) for x, y in inside]).round().astype(int)
    on, off = shown[pts[:, 1], pts[:, 0]], bare[pts[:, 1], pts[:, 0]]
    assert colour_distance(on, colour) < colour_distance(off, colour) - 20


def test_correction_undo_redo_pixels(page, server):
    annotated(page, server)
    page.keyboard.press("m")   # no prompt markers: only the masks are compared
    move_off_canvas(page)
    wait_idle(page)
    before = canvas_shot(page, "03-before-erase.png")
    # the eraser across the middle of object 1
    page.keyboard.press("e")
    page.locator("#brush-size").fill("10")
    a, b = to_page(page, OBJ1[0] - 25, OBJ1[1]), to_page(page, OBJ1[0] + 25, OBJ1[1])
    page.mouse.move(*a)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(a[0] + (b[0] - a[0]) * k / 10, a[1])
    page.mouse.up()
    page.keyboard.press("c")
    move_off_canvas(page)
    wait_idle(page)
    erased = canvas_shot(page, "03-erased.png")
    c = to_canvas(page, *OBJ1)
    colour = object_colour(page, 1)
    assert colour_distance(ring(erased, c, 0, 8), colour) > colour_distance(ring(before, c, 0, 8), colour) + 20
    assert page.evaluate("samstreamApp.state.timeline.objects['1'].locked") == [0]   # hand-edited: locked
    page.keyboard.press("Control+z")
    wait_idle(page)
    undone = canvas_shot(page, "03-undone.png")
    assert np.abs(undone - before).mean() < 1, "undo did not restore the pixels"
    page.locator("#redo").click()
    move_off_canvas(page)
    wait_idle(page)
    redone = canvas_shot(page)
    assert np.abs(redone - erased).mean() < 1, "redo did not bring the correction back"


def test_reload_restores_frame_object_and_pixels(page, server):
    vid = annotated(page, server)
    page.keyboard.press("n")   # object 2, then back to object 1 with its key
    wait_idle(page)
    click_video(page, 112, 183)
    page.keyboard.press("1")
    page.keyboard.press("ArrowRight")
    wait_idle(page)
    page.keyboard.press("ArrowLeft")
    move_off_canvas(page)
    wait_idle(page)
    shot = canvas_shot(page, "04-before-reload.png")
    assert page.url.endswith(f"#video={vid}&frame=0&obj=1")
    page.reload()
    wait_idle(page)
    move_off_canvas(page)
    again = canvas_shot(page, "04-after-reload.png")
    assert page.locator(".object-row.selected").get_attribute("data-obj-id") == "1"
    assert page.locator(".object-row").count() == 2
    assert page.locator("#frame-slider").input_value() == "0"
    assert np.abs(again - shot).mean() < 1
    # the prompt markers come back from the server too: hiding them changes the pixels at the clicked point
    page.keyboard.press("m")
    wait_idle(page)
    bare = canvas_shot(page)
    c = to_canvas(page, *OBJ1)
    assert np.abs(ring(again, c, 0, 4) - ring(bare, c, 0, 4)).mean() > 30


def test_export_davis_download(page, server, tmp_path):
    annotated(page, server)
    page.locator("#export-format").select_option("davis")
    with page.expect_download() as info:
        page.locator("#export").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.suffix == ".zip"
    with zipfile.ZipFile(path) as z:
        pngs = sorted(n for n in z.namelist() if n.endswith(".png"))
        assert len(pngs) == NUM_FRAMES
        labels = np.asarray(Image.open(io.BytesIO(z.read(pngs[0]))))
    assert labels.shape == (H, W)
    assert labels[OBJ1[1], OBJ1[0]] == 1
    assert labels[FAR[1], FAR[0]] == 0


def test_help_lists_shortcuts_and_keys_work(page, server):
    vid = new_video(server)
    open_video(page, server, vid)
    first = canvas_shot(page)
    assert page.locator("#help-overlay").is_hidden()
    page.keyboard.press("?")
    overlay = page.locator("#help-overlay")
    assert overlay.is_visible()
    page.screenshot(path=ARTIFACTS / "06-help.png")
    text = overlay.inner_text()
    for words in ["Next frame", "Undo", "Redo", "Propagate forward", "Next flagged frame", "Brush", "Eraser",
                  "New object", "Zoom"]:
        assert words in text
    assert page.locator("#shortcut-table .shortcut").count() >= 20
    page.keyboard.press("Escape")
    assert overlay.is_hidden()
    page.keyboard.press("ArrowRight")
    wait_idle(page)
    assert page.locator("#frame-number").inner_text() == f"1 / {NUM_FRAMES}"
    assert "frame=1" in page.url
    assert np.abs(canvas_shot(page) - first).mean() > 0.5   # the next frame is drawn
    page.keyboard.press("b")
    assert page.locator("#tool-box.active").count() == 1 and page.locator("#tool-click.active").count() == 0
    page.keyboard.press("+")
    page.wait_for_function("samstreamApp.state.zoom > 1")
    page.keyboard.press("0")
    page.wait_for_function("samstreamApp.state.zoom === 1")


def test_a_stale_page_shows_the_conflict_and_reloads(page, server):
    vid = annotated(page, server)
    # another tab adds an object behind the page's back: the page's version is now stale
    call(server["url"], f"/api/videos/{vid}/objects", "POST", {"name": "from elsewhere"})
    click_video(page, 112, 183)
    status = page.locator("#status")
    assert "error" in status.get_attribute("class")
    assert status.inner_text().strip()
    page.wait_for_function("document.querySelectorAll('.object-row').length === 2")
    assert "from elsewhere" in page.locator("#objects").inner_text()
    # nothing is lost: the next click goes through with the fresh version
    click_video(page, 112, 183)
    assert "error" not in (status.get_attribute("class") or "")

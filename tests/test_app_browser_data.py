"""The page's Import and "Export training set" (samstream/app/static/data.js) in headless Chromium, on a real
uvicorn server: an imported mask is drawn on the canvas (pixels of a screenshot), a bad file's error shows in
#status, and the start view's project row downloads the training set.

Skipped when Playwright or Chromium is missing, unless SAMSTREAM_REQUIRE_BROWSER=1.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser import ARTIFACTS, require_browser

require_browser()

from samstream.app.server import create_app  # noqa: E402
from samstream.io.png import encode_label_png  # noqa: E402
from tests.helpers import live_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
W, H, N = 96, 64, 4
RECT = (slice(16, 48), slice(8, 56))  # rows, columns of the imported mask on frame 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server (embedded model) on a data folder holding a 4-frame grey clip; -> (url, video id, project)."""
    data = tmp_path_factory.mktemp("appdata")
    (data / "clip").mkdir()
    rng = np.random.default_rng(0)
    for t in range(N):
        Image.fromarray((100 + rng.integers(0, 20, (H, W, 3))).astype(np.uint8)).save(data / "clip" / f"{t:05d}.png")
    app = create_app(data)
    with live_server(app) as url:
        store = app.state.store
        pid = store.create_project("import tests")["id"]
        vid = store.add_video(pid, "clip", "clip", N, W, H, None)["id"]
        yield url, vid, pid, store


def wait_idle(page):
    page.wait_for_function("window.samstreamApp && samstreamApp.isIdle()")


def canvas_shot(page, name=None) -> np.ndarray:
    png = page.locator("#frame-canvas").screenshot()
    if name:
        (ARTIFACTS / name).write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def in_rect(page, img) -> np.ndarray:
    """The canvas pixels inside RECT's middle half (the frame is fitted into the canvas and centred)."""
    box = page.locator("#frame-canvas").bounding_box()
    s = min(box["width"] / W, box["height"] / H)
    x0, y0 = (box["width"] - W * s) / 2, (box["height"] - H * s) / 2
    r, c = RECT
    ys = slice(int(y0 + (r.start + 8) * s), int(y0 + (r.stop - 8) * s))
    xs = slice(int(x0 + (c.start + 12) * s), int(x0 + (c.stop - 12) * s))
    return img[ys, xs].reshape(-1, 3)


def test_import_draws_the_masks_and_errors_show_in_status(page, server, tmp_path):
    url, vid, _, _ = server
    page.goto(f"{url}/#video={vid}")
    wait_idle(page)
    before = in_rect(page, canvas_shot(page))
    labels = np.zeros((H, W), np.uint8)
    labels[RECT] = 1
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("00000.png", encode_label_png(labels))
    (tmp_path / "masks.zip").write_bytes(buf.getvalue())
    page.locator("#import").set_input_files(str(tmp_path / "masks.zip"))
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Imported')")
    wait_idle(page)
    assert page.locator(".object-row[data-obj-id='1']").count() == 1
    after = in_rect(page, canvas_shot(page, "import.png"))
    colour = page.evaluate("samstreamApp.state.video.objects[0].colour")
    rgb = np.array([int(colour[i: i + 2], 16) for i in (1, 3, 5)], np.float32)
    near, far = (float(np.linalg.norm(px - rgb, axis=1).mean()) for px in (after, before))
    assert near < far - 20, (far, near)
    # a file of the wrong size: its error in #status, nothing new
    small = io.BytesIO()
    with zipfile.ZipFile(small, "w") as zf:
        zf.writestr("00001.png", encode_label_png(np.ones((8, 8), np.uint8)))
    (tmp_path / "small.zip").write_bytes(small.getvalue())
    page.locator("#import").set_input_files(str(tmp_path / "small.zip"))
    page.wait_for_function("document.querySelector('#status').classList.contains('error')")
    text = page.locator("#status").text_content()
    assert "small.zip" in text and "8x8" in text and f"{W}x{H}" in text
    assert page.locator(".object-row").count() == 1


def test_start_view_exports_the_training_set(page, server, tmp_path):
    from samstream.app.imports import read_import, store_import

    url, _, pid, store = server
    other = store.add_video(pid, "clip", "clip", N, W, H, None)["id"]  # a second video, with a mask on frame 2
    labels = np.zeros((H, W), np.uint8)
    labels[RECT] = 3
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("00002.png", encode_label_png(labels))
    store_import(store, other, read_import(buf, "m.zip", store.video(other)), "m.zip")
    page.goto(url + "/")
    button = page.locator(f"#projects li.project[data-project-id='{pid}'] .export-training")
    button.wait_for()
    with page.expect_download() as info:
        button.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert info.value.suggested_filename == "import_tests_training.zip"
    names = set(zipfile.ZipFile(path).namelist())
    assert {"JPEGImages/480p/clip_2/00002.jpg", "Annotations/480p/clip_2/00002.png"} <= names

"""The app's login in the browser: a real uvicorn server with accounts, driven through headless Chromium
(Playwright): the login page, a wrong password, the app after a login (writes carry the CSRF token: a project is
made, shared and annotated, the mask checked in the canvas pixels), logout, and the shared project seen by the
other user. Skipped when Playwright or Chromium is missing, unless SAMSTREAM_REQUIRE_BROWSER=1. Screenshots go
to test-artifacts/app/.
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser import ARTIFACTS, TIMEOUT_MS, require_browser

require_browser()

from samstream.app.server import create_app  # noqa: E402
from tests.helpers import demo_clip, live_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OBJ1 = (179, 40)  # on frame 0 of demo.mp4 (320x240): inside object 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("authdata")
    demo_clip(data / "clip", n=3, step=1)
    app = create_app(data)  # the embedded model
    app.state.accounts.add_user("alice", "alice-password")
    app.state.accounts.add_user("bob", "bob-password")
    with live_server(app) as url:
        yield url


def new_page(browser, errors):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, pg


def log_in(page, name, password):
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#login-submit")


def canvas(page) -> np.ndarray:
    import io

    png = page.locator("#frame-canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def test_login_share_annotate_logout(server, browser):
    errors = []
    ctx, page = new_page(browser, errors)
    page.goto(f"{server}/#start")
    assert page.locator("#login-form").is_visible() and page.locator("#frame-canvas").count() == 0
    log_in(page, "alice", "wrong-password")
    page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
    assert page.text_content("#login-error") == "wrong name or password"
    page.screenshot(path=ARTIFACTS / "07-login.png")

    log_in(page, "alice", "alice-password")
    page.wait_for_selector("#account:not([hidden])")
    assert page.text_content("#user-name") == "alice"
    assert page.evaluate("location.hash") == "#start"  # the address survives the login

    page.fill("#new-project-name", "zoo")  # writes from the page carry the CSRF token
    page.click("#new-project")
    page.wait_for_selector("#projects li.project .share")
    page.once("dialog", lambda d: d.accept("bob"))
    page.click("#projects li.project .share")
    page.wait_for_function("document.querySelector('#projects li.project .members')?.textContent === "
                           "'shared with bob'")
    page.click("#library li.entry[data-path='clip'] .add-video")
    page.click("#projects li.video a")
    page.wait_for_function("window.samstreamApp && samstreamApp.isIdle()")
    before = canvas(page)
    x, y = page.evaluate(f"samstreamApp.videoToClient({OBJ1[0]}, {OBJ1[1]})")
    page.mouse.click(x, y)
    page.wait_for_function("samstreamApp.state.markers && samstreamApp.isIdle() && "
                           "samstreamApp.state.video.objects.length > 0")
    page.wait_for_function("window.samstreamApp.isIdle()")
    after = canvas(page)
    changed = (np.abs(after - before).sum(-1) > 30).mean()
    assert changed > 0.003, changed  # the mask is drawn
    vid = page.evaluate("samstreamApp.state.video.id")
    area = page.evaluate(f"fetch('/api/videos/{vid}/masks/0').then(r => r.json()).then(m => m.objects['1'].area)")
    assert area > 100
    page.screenshot(path=ARTIFACTS / "08-logged-in.png")

    page.click("#logout")
    page.wait_for_selector("#login-form")
    assert page.evaluate(f"fetch('/api/videos/{vid}').then(r => r.status)") == 401
    ctx.close()

    ctx, page = new_page(browser, errors)  # bob sees the project alice shared, and its mask
    page.goto(f"{server}/#video={vid}")
    log_in(page, "bob", "bob-password")
    page.wait_for_function("window.samstreamApp && samstreamApp.isIdle()")
    assert page.text_content("#user-name") == "bob" and page.text_content("#video-title") == "clip"
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"

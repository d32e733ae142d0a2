"""Regenerate docs/images/app.png: the annotation app on the demo clip, two objects propagated over 12 frames.

Runs the same setup as tests/test_app_browser.py (a live server with the embedded model, headless Chromium):
    .venv/bin/python -m tools.make_app_screenshot [--out docs/images/app.png]      (from the repository root)
"""

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from PIL import Image
from playwright.sync_api import sync_playwright

from samstream.app.server import create_app
from samstream.video.sources import open_source
from tests.browser import launch
from tests.test_app_browser import to_page, wait_idle

ROOT = Path(__file__).resolve().parents[1]

OBJECTS = [("ellipse", (179, 40)), ("card", (112, 183))]   # demo.mp4 frame 0, video pixels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "images" / "app.png"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "demo").mkdir()
        src = open_source(ROOT / "samstream" / "assets" / "demo.mp4")
        for t in range(12):
            Image.fromarray(src.read(t)).save(data / "demo" / f"{t:05d}.png")
        src.close()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        srv = uvicorn.Server(uvicorn.Config(create_app(data), log_level="warning"))
        thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not srv.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1440, "height": 860}, device_scale_factor=1)
            page.set_default_timeout(120_000)
            page.goto(url + "/")
            page.fill("#new-project-name", "demo")
            page.click("#new-project")
            page.click("#library li[data-path='demo'] .add-video")
            page.wait_for_selector("#projects li.video a")
            page.click("#projects li.video a")
            wait_idle(page)
            for k, (name, (x, y)) in enumerate(OBJECTS):
                if k:
                    page.keyboard.press("n")
                    wait_idle(page)
                page.mouse.click(*to_page(page, x, y))
                wait_idle(page)
                page.dblclick(f".object-row[data-obj-id='{k + 1}'] .obj-name")
                page.keyboard.type(name)
                page.keyboard.press("Enter")
                wait_idle(page)
            page.click("#propagate-forward")
            page.wait_for_function("samstreamApp.state.job && samstreamApp.state.job.state !== 'running'"
                                   " && samstreamApp.isIdle()")
            page.keyboard.press("1")
            for _ in range(6):
                page.keyboard.press("ArrowRight")
            page.mouse.move(5, 5)
            wait_idle(page)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out)
            browser.close()
        srv.should_exit = True
        thread.join(10)
    print(args.out)


if __name__ == "__main__":
    main()

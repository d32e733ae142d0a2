"""What the browser tests share: Debian's chromium driven by Playwright's Python package (through
executable_path: Playwright's own browser download is not reachable here), and a JSON call to a live server.

A browser test module calls `require_browser()` first: without Playwright or chromium it skips the module, unless
SAMSTREAM_REQUIRE_BROWSER=1 (CI sets it), where a missing browser is a failure. The `browser` fixture is in
conftest.py. Screenshots go to ARTIFACTS.
"""
from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

REQUIRED = os.environ.get("SAMSTREAM_REQUIRE_BROWSER") == "1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# headless, as root, and no background connections (this machine's closed network refuses them, many at a time)
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "app"
TIMEOUT_MS = 60_000


def require_browser() -> None:
    """Skip the calling module without Playwright, chromium or the app's extra (fail instead under CI)."""
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        missing = "playwright is not installed"
    if missing is None and not Path(CHROMIUM).exists():  # pragma: no cover
        missing = f"there is no chromium at {CHROMIUM}"
    for extra in ("fastapi", "uvicorn"):
        try:
            __import__(extra)
        except ImportError:  # pragma: no cover
            missing = missing or f"{extra} is not installed"
    if missing is not None:  # pragma: no cover
        if REQUIRED:
            raise RuntimeError(f"SAMSTREAM_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing, allow_module_level=True)


def launch(playwright):
    """Headless Debian chromium."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)


def call(url: str, path: str, method: str = "GET", body=None):
    """One JSON request to a live server -> the decoded answer (None for an empty one)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as res:
        return json.loads(res.read() or b"null")

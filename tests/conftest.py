import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import GROCERIES

# One torch thread for the whole run: most tests use small models whose per-op overhead dominates, and on a
# shared 2-core machine two threads per process stall each other (identical runs varied 2-20x); one is steady.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def real_image() -> np.ndarray:
    """groceries.jpg, (534, 800, 3) uint8."""
    return np.asarray(Image.open(GROCERIES).convert("RGB"))


@pytest.fixture(scope="module")
def browser():
    """Headless chromium for a browser test module (which called tests.browser.require_browser first)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import ARTIFACTS, launch

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page (1280x800, devicePixelRatio 1, downloads allowed) that fails the test on a JavaScript error."""
    from tests.browser import TIMEOUT_MS

    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"

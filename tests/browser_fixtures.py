"""Browser fixtures (shared by every suite): headless Debian Chromium driven by Playwright against the live server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(os.environ.get("LABELLOOP_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="session")
def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    _requests_finished(live_server)


def _requests_finished(live_server, timeout: float = 90.0) -> None:
    """Wait for the live server's request threads: a request the page started just before the test ended (a
    prefetch, a poll) must not run into the database's teardown (CI, once: "Database access not allowed" in a
    server thread, then a failed teardown). The socketserver keeps its live request threads in `_threads`. The wait
    is long: with eager tasks a heatmap request computes the next images' heatmaps in its own thread, and on a busy
    2-core CI machine one outlived a 15 s wait (CI, stop 48)."""
    httpd = getattr(getattr(live_server, "thread", None), "httpd", None)
    for thread in list(getattr(httpd, "_threads", None) or []):
        thread.join(timeout)


@pytest.fixture
def login(page, live_server):
    def do(username: str, password: str = "pw"):
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)

    return do


@pytest.fixture
def screenshot(page):
    def shot(name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot

"""Browser fixtures (shared by every suite): headless Debian Chromium driven by Playwright against the live server."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

# Longer than socketserver's serve_forever poll interval (0.5 s): a connection accepted meanwhile has its thread.
SERVER_POLL_S = 0.6
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
    prefetch, a poll) must not run into the database's teardown ("Database access not allowed" in a server thread,
    then a failed teardown). The socketserver keeps its live request threads in `_threads`.

    A connection the browser opened just before its context closed is only handed to a thread at the server loop's
    next poll (every 0.5 s), after a single look at `_threads`: on the busy CI machine such a heatmap request then
    computed the next images' heatmaps (eager tasks) into the teardown (CI, stop 48, twice). So the wait ends only
    when no request thread has been alive for longer than that poll."""
    httpd = getattr(getattr(live_server, "thread", None), "httpd", None)
    if httpd is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [t for t in list(getattr(httpd, "_threads", None) or []) if t.is_alive()]
        for thread in alive:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not alive:
            time.sleep(SERVER_POLL_S)
            if not any(t.is_alive() for t in list(getattr(httpd, "_threads", None) or [])):
                return


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

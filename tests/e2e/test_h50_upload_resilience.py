"""A browser upload on a flaky line: a batch lost to the network is sent again and the upload goes on to one import job
with every file once; leaving the page mid-upload asks first; files over the size limit are named before sending."""

from __future__ import annotations

import io
import os
import re
import time

import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from labeling.models import Item, Job, JobKind, JobStatus, Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.slow]

FILES = 60
BATCH = 10  # 6 batches
# Every text #upload-status showed, in order: a retry's countdown lasts a second or so
RECORD = """() => { window.seen = []; const s = document.getElementById('upload-status');
  new MutationObserver(() => window.seen.push(s.textContent)).observe(s, {childList: true, characterData: true,
  subtree: true}); }"""
BEFOREUNLOAD = """() => { const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e);
  return e.defaultPrevented; }"""


def noisy_png() -> bytes:
    """A PNG of about 12 KiB (noise does not compress), so that a throttled upload takes a few seconds."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def photos(tmp_path):
    paths = []
    for n in range(FILES):
        path = tmp_path / "team" / f"photo_{n:02}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(noisy_png())
        paths.append(str(path))
    return paths


@pytest.fixture
def import_page(page, login, project_factory, member_of, monkeypatch):
    monkeypatch.setattr("labeling.views.imports.UPLOAD_BATCH_FILES", BATCH)
    project = project_factory(name="Flaky", slug="flaky")
    member_of(project, Role.MANAGER, "maria")
    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    page.evaluate(RECORD)
    return project


def _imported_once(page, project) -> None:
    job_card = page.locator(".job[data-status=succeeded]")
    expect(job_card).to_be_visible(timeout=60_000)
    expect(page.locator("#upload-status")).to_have_text(f"Uploaded {FILES} files; the import runs in the background.")
    expect(page.locator("#upload-error")).to_be_hidden()
    job = Job.objects.get(project=project, kind=JobKind.IMPORT)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert (job.result["imported"], job.result["duplicates"], job.result["rejected"]) == (FILES, 0, 0)
    names = sorted(Item.objects.filter(project=project).values_list("original_name", flat=True))
    assert names == [f"photo_{n:02}.png" for n in range(FILES)]


def test_a_network_drop_mid_upload_is_retried_and_every_file_imported_once(page, import_page, photos, screenshot):
    # Given a manager uploading 60 photos in 6 batches on a slow line (about 100 KiB/s up)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")

    def line(offline: bool) -> None:
        conditions = {"latency": 50, "downloadThroughput": 1_000_000, "uploadThroughput": 100_000}
        cdp.send("Network.emulateNetworkConditions", {"offline": offline, **conditions})

    line(False)
    page.set_input_files("#file-input", photos)
    page.click("#upload-button")

    # When the network goes away for 4 seconds after 20 files went out
    page.wait_for_function(
        "() => { const m = /Uploading… (\\d+) of/.exec(document.getElementById('upload-status').textContent);"
        " return m && Number(m[1]) >= 20; }"
    )
    line(True)
    expect(page.locator("#upload-status")).to_contain_text(
        re.compile(r"Connection lost: retrying batch \d of 6 in \d+ s…")
    )
    screenshot("h50-upload-retrying")
    time.sleep(4)
    line(False)

    # Then the page said it was retrying, never counted a failed batch as sent, and one job imported every file once
    _imported_once(page, import_page)
    seen = page.evaluate("window.seen")
    retries = [s for s in seen if s.startswith("Connection lost: retrying batch")]
    assert retries, seen
    counts = [int(m.group(1)) for s in seen if (m := re.search(r"(\d+) of 60 files sent", s))]
    assert counts == sorted(counts), counts  # the count never went back: nothing was counted before it arrived


def test_a_batch_whose_connection_drops_is_sent_again_and_imported_once(page, import_page, photos):
    # Given the second batch's first try loses its connection (a batch that reached the server but whose answer was
    # lost is staged once: tests/labeling/test_h50_upload_staging.py; Playwright's route.fetch() drops a multipart
    # body's files, so it cannot play that here)
    tries = []

    def batch(route):
        tries.append(route.request)
        if len(tries) == 2:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/import/upload/", batch)
    page.set_input_files("#file-input", photos)

    # When the manager uploads
    page.click("#upload-button")

    # Then the page says it retries batch 2, and the job has every file once
    _imported_once(page, import_page)
    assert len(tries) == 7
    assert any(s.startswith("Connection lost: retrying batch 2 of 6 in 1 s… (10 of 60 files sent)")
               for s in page.evaluate("window.seen")), page.evaluate("window.seen")  # fmt: skip


def test_leaving_the_page_asks_first_while_uploading_and_not_once_the_job_runs(page, import_page, photos):
    # Given the first batch is on its way (held by the test)
    held = []
    page.route("**/import/upload/", lambda route: held.append(route) if not held else route.continue_())
    page.set_input_files("#file-input", photos)
    assert page.evaluate(BEFOREUNLOAD) is False  # files chosen, nothing sent yet: nothing to lose

    page.click("#upload-button")
    page.wait_for_function("() => document.getElementById('upload-status').textContent.startsWith('Uploading')")
    while not held:
        page.wait_for_timeout(50)

    # Then leaving the page now asks first
    assert page.evaluate(BEFOREUNLOAD) is True

    # And once the upload has become a job, leaving does not ask: the job runs on the server
    held[0].continue_()
    _imported_once(page, import_page)
    assert page.evaluate(BEFOREUNLOAD) is False


def test_a_file_over_the_size_limit_is_named_when_chosen(page, import_page, photos, settings, tmp_path, screenshot):
    # Given a 20 KiB limit and a 30 KiB scan among the chosen files
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 20 * 1024
    page.reload()
    scan = tmp_path / "huge_scan.png"
    scan.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30 * 1024 - 8))

    # When the manager chooses them
    page.set_input_files("#file-input", [*photos[:3], str(scan)])

    # Then the page names the file that will not be sent, with its size and the limit, before anything is sent
    note = page.locator("#upload-skipped")
    expect(note).to_have_text("huge_scan.png is 30.0 KiB, over the 20.0 KiB limit: it will not be sent.")
    screenshot("h50-upload-size-note")

    # And the finished job refuses it in the same numbers
    page.click("#upload-button")
    expect(page.locator(".job[data-status=succeeded]")).to_be_visible(timeout=30_000)
    row = page.locator("table.rejections tr", has_text="huge_scan.png")
    expect(row).to_contain_text("file is 30.0 KiB, over the 20.0 KiB limit; not uploaded")
    expect(note).to_be_hidden()


def test_a_batch_the_server_refuses_is_not_retried_and_says_why(page, import_page, photos):
    # Given the server refuses the second batch as too large
    tries = []

    def batch(route):
        tries.append(route.request)
        if len(tries) == 2:
            route.fulfill(status=413, body="Request Entity Too Large")
        else:
            route.continue_()

    page.route("**/import/upload/", batch)
    page.set_input_files("#file-input", photos)

    # When the manager uploads
    page.click("#upload-button")

    # Then the refusal is shown with its reason, nothing is retried or imported, and the button works again
    expect(page.locator("#upload-error")).to_have_text(
        "The server refused the upload as too large (HTTP 413). Upload fewer or smaller files at a time. "
        "Nothing was imported."
    )
    expect(page.locator("#upload-status")).to_have_text("Upload stopped: 10 of 60 files sent.")
    expect(page.locator("#upload-button")).to_be_enabled()
    assert len(tries) == 2
    assert not any(s.startswith("Connection lost") for s in page.evaluate("window.seen"))
    assert not Job.objects.filter(project=import_page).exists()


def test_after_two_minutes_offline_the_upload_stops_and_the_button_goes_on_from_there(
    page, import_page, photos, screenshot
):
    # Given the connection drops for good after the first batch (the page's clock is the test's, to skip the waits)
    page.clock.install()
    tries = []
    offline = [True]

    def batch(route):
        tries.append(route.request)
        if len(tries) >= 2 and offline[0]:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/import/upload/", batch)
    page.set_input_files("#file-input", photos)
    page.click("#upload-button")

    # When no retry gets through for about two minutes
    error = page.locator("#upload-error")
    for _ in range(200):
        page.clock.run_for(1_000)
        if error.is_visible():
            break

    # Then the page says the upload stopped, that nothing was imported and what the button does now
    expect(error).to_have_text(
        "No answer from the server for two minutes (the network connection was lost). "
        "Nothing was imported. Press “Upload and import” again to go on: the 10 files already sent are kept and "
        "not sent again."
    )
    expect(page.locator("#upload-status")).to_have_text("Upload stopped: 10 of 60 files sent.")
    screenshot("h50-upload-gave-up")
    assert len(tries) == 10  # the first batch, then the second's first try and its 8 retries
    assert not Job.objects.filter(project=import_page).exists()
    assert page.evaluate(BEFOREUNLOAD) is False  # nothing is running that leaving would cut off

    # And pressing the button once the line is back sends only the 5 batches that had not arrived
    offline[0] = False
    page.clock.resume()
    page.click("#upload-button")
    _imported_once(page, import_page)
    assert len(tries) == 15


def test_a_batch_that_stalls_without_an_error_is_sent_again(page, import_page, photos):
    # Given the second batch's first try never gets through and never fails (held by the test: a line gone quiet)
    page.clock.install()
    tries = []

    def batch(route):
        tries.append(route)
        if len(tries) != 2:
            route.continue_()

    page.route("**/import/upload/", batch)
    page.set_input_files("#file-input", photos)
    page.click("#upload-button")
    while len(tries) < 2:
        page.wait_for_timeout(50)

    # When 30 s pass without a byte going out
    page.clock.run_for(31_000)

    # Then the page gives that try up, says it retries, and the upload goes on to one job with every file once
    expect(page.locator("#upload-status")).to_contain_text("Connection lost: retrying batch 2 of 6")
    page.clock.resume()
    _imported_once(page, import_page)
    assert len(tries) == 7

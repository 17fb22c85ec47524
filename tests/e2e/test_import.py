"""A manager imports images in a real browser: pick files, upload, watch the job finish, read why a file was refused."""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from labeling.models import Item, ItemState, Job, JobKind, JobStatus, ResolvedLabel, Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (seed * 40 % 256, seed * 90 % 256, 7)).save(buffer, "PNG")
    return buffer.getvalue()


def test_manager_uploads_files_and_sees_the_rejected_one_with_its_reason(
    page, login, screenshot, project_factory, member_of, tmp_path
):
    project = project_factory(name="Harbour", slug="harbour")
    member_of(project, Role.MANAGER, "maria")
    paths = []
    for n in range(3):
        path = tmp_path / f"boat{n}.png"
        path.write_bytes(png(n))
        paths.append(path)
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"meeting notes, not a photo")
    paths.append(bad)

    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    expect(page.locator("#no-jobs")).to_be_visible()
    page.set_input_files("#file-input", [str(p) for p in paths])
    expect(page.locator("#upload-status")).to_contain_text("4 files selected")
    page.click("#upload-button")

    job = page.locator(".job[data-status=succeeded]")
    expect(job).to_be_visible(timeout=30_000)
    expect(job).to_contain_text("imported: 3")
    rejection = job.locator("table.rejections tr", has_text="notes.jpg")
    expect(rejection).to_contain_text("a text file, not an image")
    expect(page.locator("#upload-error")).to_be_hidden()
    screenshot("import-finished-with-a-rejection")

    assert Job.objects.get(project=project, kind=JobKind.IMPORT).status == JobStatus.SUCCEEDED
    items = Item.objects.filter(project=project)
    assert sorted(items.values_list("original_name", flat=True)) == ["boat0.png", "boat1.png", "boat2.png"]
    assert set(items.values_list("state", "width", "height")) == {(ItemState.UNLABELED, 24, 16)}

    # Reloading shows the same finished job: the result is stored, not just painted by the script.
    page.reload()
    expect(page.locator(".job[data-status=succeeded]", has_text="notes.jpg")).to_be_visible()


def test_manager_drops_files_on_the_drop_zone_and_the_import_finishes(
    page, login, screenshot, project_factory, member_of
):
    # Given a manager on the import page, and files dragged from the desktop (a macOS .DS_Store among them)
    project = project_factory(name="Dropped", slug="dropped")
    member_of(project, Role.MANAGER, "maria")
    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    files = [{"name": f"leaf{n}.png", "bytes": list(png(n + 10)), "type": "image/png"} for n in range(5)]
    files.append({"name": ".DS_Store", "bytes": list(b"\x00\x00\x00\x01Bud1"), "type": ""})

    # When they drop them on the drop zone (a real drop event carrying a DataTransfer of File objects)
    page.evaluate(
        """(files) => {
            const data = new DataTransfer();
            for (const f of files) data.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: f.type }));
            const zone = document.getElementById("dropzone");
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
            }
        }""",
        files,
    )

    # Then the page counts the images (not the litter), uploads them and the import finishes
    expect(page.locator("#upload-status")).to_contain_text("5 files selected")
    expect(page.locator("#dropzone")).not_to_have_class(re.compile(r"\bover\b"))  # the hover style is gone
    page.click("#upload-button")
    job = page.locator(".job[data-status=succeeded]")
    expect(job).to_be_visible(timeout=30_000)
    expect(job).to_contain_text("imported: 5")
    expect(job.locator("table.rejections")).to_have_count(0)
    screenshot("import-dropped-files")
    assert sorted(Item.objects.filter(project=project).values_list("original_name", flat=True)) == [
        f"leaf{n}.png" for n in range(5)
    ]


def photo_like_jpeg(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A smooth gradient with noise: decodes like a small photo, compresses like one."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.linspace(0, 1, w)[None, :, None] * rng.uniform(40, 200, 3) + np.linspace(0, 1, h)[:, None, None] * 50
    pixels = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.integration
def test_a_zip_of_800_images_uploaded_through_the_page_is_imported_by_the_worker(
    page, login, screenshot, project_factory, member_of, start_worker, tmp_path
):
    # Given the imports worker running as `make demo` runs it, and a zip of 800 photos in 4 class folders
    worker = start_worker(queues="default", name="imports")
    project = project_factory(name="Fieldwork", slug="fieldwork")
    member_of(project, Role.MANAGER, "maria")
    archive = tmp_path / "fieldwork.zip"
    classes = ["beetle", "moth", "spider", "wasp"]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for n in range(800):
            zf.writestr(f"fieldwork/{classes[n % 4]}/{n:04d}.jpg", photo_like_jpeg(n))

    # When the manager uploads it from the import page with "Folders are classes"
    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    page.set_input_files("#file-input", str(archive))
    page.check("#labels-from-folders")
    page.click("#upload-button")

    # Then the job shows its progress while the worker runs it...
    page.wait_for_function(
        """() => {
            const bar = document.querySelector('.job[data-status=running] [role=progressbar]');
            return bar !== null && Number(bar.getAttribute('aria-valuenow')) > 0;
        }""",
        timeout=120_000,
    )
    screenshot("import-running")
    # ...and finishes, with every image imported under its folder's class
    finished = page.locator(".job[data-status=succeeded]")
    expect(finished).to_be_visible(timeout=180_000)
    expect(finished).to_contain_text("800 / 800")
    expect(finished).to_contain_text("imported: 800")
    job = Job.objects.get(project=project, kind=JobKind.IMPORT)
    assert job.status == JobStatus.SUCCEEDED, worker.output()[-3000:]
    assert Item.objects.filter(project=project, state=ItemState.LABELED).count() == 800
    labels = ResolvedLabel.objects.filter(project=project).values_list("classes__name", flat=True)
    assert Counter(labels) == dict.fromkeys(classes, 200)


def test_manager_picks_an_imagefolder_folder_and_its_sub_folders_become_classes(
    page, login, screenshot, project_factory, member_of, tmp_path
):
    # Given an ImageFolder tree on the manager's disk (two classes, a nested one, and macOS litter)
    project = project_factory(name="Picked", slug="picked")
    member_of(project, Role.MANAGER, "maria")
    root = tmp_path / "flowers"
    layout = {"rose": 3, "tulip": 2, "tulip/parrot": 2}
    for n, (folder, count) in enumerate(layout.items()):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            (root / folder / f"{k}.png").write_bytes(png(10 * n + k))
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "rose" / "._0.png").write_bytes(b"AppleDouble")

    # When they pick the folder with the folder picker, tick "folders are classes" and upload
    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    page.set_input_files("#folder-input", str(root))
    expect(page.locator("#upload-status")).to_contain_text("7 files selected")
    page.check("#labels-from-folders")
    page.click("#upload-button")

    # Then every image is imported with its folder's class, nested folders as a path
    job = page.locator(".job[data-status=succeeded]")
    expect(job).to_be_visible(timeout=30_000)
    expect(job).to_contain_text("imported: 7")
    screenshot("import-picked-folder")
    resolved = ResolvedLabel.objects.filter(project=project).prefetch_related("classes__parent")
    assert Counter(c.path for r in resolved for c in r.classes.all()) == {"rose": 3, "tulip": 2, "tulip / parrot": 2}
    # and the job says the picked folder is no class (the page told it which folder was picked)
    expect(job.locator(".top-folder")).to_have_text(
        "flowers, the folder dropped or picked on the page, is not a class: its sub-folders are."
    )


def test_the_upload_counts_only_the_files_whose_bytes_have_gone_out(page, login, project_factory, member_of, tmp_path):
    # Given 40 photos of noise (about 50 KB each, all in one upload batch) and a slow uplink (about 400 KB/s)
    project = project_factory(name="Harbour", slug="harbour")
    member_of(project, Role.MANAGER, "maria")
    rng = np.random.default_rng(0)
    paths = []
    for n in range(40):
        path = tmp_path / f"noise{n:02d}.png"
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": 10_000_000, "uploadThroughput": 400_000},
    )
    page.evaluate(
        "() => { window.statuses = []; new MutationObserver(() => window.statuses.push("
        "document.getElementById('upload-status').textContent)).observe(document.getElementById('upload-status'),"
        " {childList: true, characterData: true, subtree: true}); }"
    )

    # When she uploads them
    page.set_input_files("#file-input", paths)
    page.click("#upload-button")
    expect(page.locator(".job[data-status=succeeded]")).to_be_visible(timeout=60_000)

    # Then while the batch went out the count rose with the bytes sent, from under 40, never down
    counts = [
        int(m.group(1)) for s in page.evaluate("window.statuses") if (m := re.match(r"Uploading… (\d+) of 40", s))
    ]
    assert len(counts) >= 3, counts
    assert counts[0] < 40, counts
    assert counts == sorted(counts)
    assert Item.objects.filter(project=project).count() == 40

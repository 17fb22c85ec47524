"""A manager imports images in a real browser: pick files, upload, watch the job finish, read why a file was refused."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from labeling.models import Item, ItemState, Job, JobKind, JobStatus, Role

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

"""A manager picks a folder of class folders on the import page in a real browser: the page ticks "Folders are
classes" and says which folders become classes (a box the manager unticked stays unticked); the finished job's
card counts the files imported from each folder and lists the refused ones by name beside their kind, under a
table by kind that sits left-aligned under the folder table."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from labeling.models import Item, Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (seed * 40 % 256, seed * 90 % 256, 7)).save(buffer, "PNG")
    return buffer.getvalue()


def folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root / next(iter(files)).split("/")[0]


@pytest.mark.slow
def test_a_picked_folder_of_class_folders_is_read_as_classes_and_the_card_counts_what_was_imported(
    page, login, project_factory, member_of, tmp_path, screenshot
):
    # Given a manager on the import page and a folder pets holding cat/ and dog/, one dog image corrupt
    project = project_factory(name="Pets import", slug="pets-import")
    member_of(project, Role.MANAGER, "maria")
    files = {f"pets/dog/{n}.png": png(n) for n in range(3)} | {"pets/cat/1.png": png(5)}
    files |= {"pets/dog/corrupt_2.png": png(7)[:60], "pets/dog/corrupt_1.png": png(8)[:60]}
    pets = folder(tmp_path, files | {"pets/dog/notes.txt": b"taken at the shelter\n"})
    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    expect(page.locator("#labels-from-folders")).not_to_be_checked()

    # When they pick the folder
    page.set_input_files("#folder-input", str(pets))

    # Then the page ticks "Folders are classes" and says which folders become classes
    expect(page.locator("#upload-status")).to_contain_text("7 files selected")
    expect(page.locator("#labels-from-folders")).to_be_checked()
    hint = page.locator("#folders-hint")
    expect(hint).to_be_visible()
    expect(hint).to_have_text(
        "Ticked: the images of pets lie in its sub-folders, which become classes: cat, dog. "
        "Untick to import them unlabeled."
    )
    screenshot("1-folder-picked-hint")

    # When they upload it
    page.click("#upload-button")
    job = page.locator(".job[data-status=succeeded]")
    expect(job).to_be_visible(timeout=30_000)

    # Then the folder table counts the images imported from each folder, of how many when some were refused
    rows = job.locator("table.folder-classes tbody tr")
    expect(rows.nth(0).locator("td")).to_have_text(["pets/cat", "cat", "1"])
    expect(rows.nth(1).locator("td")).to_have_text(["pets/dog", "dog", "3 of 6"])
    expect(job.locator(".new-classes")).to_contain_text("dog (3 files)")
    # and the problems are listed A to Z, each beside the kind the table by kind counts it under
    expect(job.locator("details.rejections-by-name summary")).to_have_text("Files by name, A to Z (all 3)")
    names = job.locator("details.rejections-by-name tbody tr td:first-child")
    expect(names).to_have_text(["pets/dog/corrupt_1.png", "pets/dog/corrupt_2.png", "pets/dog/notes.txt"])
    expect(job.locator("details.rejections-by-name tbody tr", has_text="notes.txt")).to_contain_text(
        "not a supported image"
    )
    by_kind = job.locator("table.rejections-by-reason")
    expect(by_kind.locator("tbody tr", has_text="not a supported image")).to_contain_text("1")
    expect(by_kind.locator("tbody tr", has_text="truncated or corrupt")).to_contain_text("2")
    # and the table by kind is left-aligned under the folder table, its counts beside the kinds
    boxes = page.evaluate(
        """() => {
            const box = (el) => el.getBoundingClientRect();
            const table = document.querySelector(".job table.rejections-by-reason");
            return { folders: box(document.querySelector(".job table.folder-classes")), table: box(table),
                     caption: box(table.querySelector("caption")), card: box(document.querySelector(".job")),
                     align: getComputedStyle(table.querySelector("caption")).textAlign };
        }"""
    )
    assert boxes["align"] == "left"
    assert boxes["table"]["x"] == boxes["folders"]["x"]
    assert boxes["table"]["width"] < boxes["card"]["width"] / 2
    screenshot("2-job-card")
    assert Item.objects.filter(project=project).count() == 4


@pytest.mark.slow
def test_a_box_the_user_unticked_is_not_ticked_again(page, login, project_factory, member_of, tmp_path, screenshot):
    # Given a manager who picked a folder of class folders and unticked the box the page ticked
    project = project_factory(name="Unticked", slug="unticked")
    member_of(project, Role.MANAGER, "maria")
    pets = folder(tmp_path / "a", {"pets/cat/1.png": png(1), "pets/dog/2.png": png(2)})
    flat = folder(tmp_path / "b", {"photos/1.png": png(3), "photos/2.png": png(4)})
    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    page.set_input_files("#folder-input", str(pets))
    expect(page.locator("#labels-from-folders")).to_be_checked()
    page.uncheck("#labels-from-folders")

    # When they pick a folder without sub-folders, then the first folder again
    page.set_input_files("#folder-input", str(flat))
    expect(page.locator("#folders-hint")).to_be_hidden()
    page.set_input_files("#folder-input", str(pets))

    # Then the box stays unticked, and the hint says what ticking it would do
    expect(page.locator("#upload-status")).to_contain_text("2 files selected")
    expect(page.locator("#labels-from-folders")).not_to_be_checked()
    expect(page.locator("#folders-hint")).to_have_text(
        "Not ticked, but the images of pets lie in its sub-folders (cat, dog): tick to make them classes."
    )
    screenshot("3-unticked-stays")

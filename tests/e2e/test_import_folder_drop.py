"""A manager drops folders on the import page in a real browser: the one folder dropped is no class, its sub-folders
are (labeling.services.imports.folder_classes); several folders dropped at once are each a class. The drop carries
file-system entries as the browser gives them for a dragged folder (a synthetic DataTransfer cannot hold folders)."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from labeling.models import ResolvedLabel, Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# Folders as webkitGetAsEntry() gives them: a directory entry whose reader lists its children once, file entries
DROP_FOLDERS = """(files) => {
    const root = { children: new Map() };
    for (const f of files) {
        const parts = f.path.split("/");
        let node = root;
        for (const name of parts.slice(0, -1)) {
            if (!node.children.has(name)) node.children.set(name, { name, children: new Map() });
            node = node.children.get(name);
        }
        const file = new File([new Uint8Array(f.bytes)], parts[parts.length - 1], { type: "image/png" });
        node.children.set(file.name, { file });
    }
    const entry = (node) => node.file
        ? { isFile: true, isDirectory: false, name: node.file.name, file: (ok) => ok(node.file) }
        : { isFile: false, isDirectory: true, name: node.name, createReader: () => {
              let listed = false;
              const readEntries = (ok) => {
                  ok(listed ? [] : Array.from(node.children.values(), entry));
                  listed = true;
              };
              return { readEntries };
          } };
    const items = Array.from(root.children.values(), (node) => ({
        kind: "file", webkitGetAsEntry: () => entry(node), getAsFile: () => null,
    }));
    const drop = new Event("drop", { bubbles: true, cancelable: true });
    Object.defineProperty(drop, "dataTransfer", { value: { items, files: [] } });
    document.getElementById("dropzone").dispatchEvent(drop);
}"""


def png(seed: int) -> list[int]:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (seed * 40 % 256, seed * 90 % 256, 7)).save(buffer, "PNG")
    return list(buffer.getvalue())


@pytest.mark.parametrize(
    ("paths", "expected", "note"),
    [
        # one folder dropped: its name is no class (what the page gave before), and the job says so
        (
            ["emoji/smileys/grin.png", "emoji/smileys/wink.png", "emoji/animals/cat.png"],
            {
                "emoji/smileys/grin.png": "smileys",
                "emoji/smileys/wink.png": "smileys",
                "emoji/animals/cat.png": "animals",
            },
            "emoji, the folder dropped or picked on the page, is not a class: its sub-folders are.",
        ),
        # two folders dropped together: each is a class
        (["cat/1.png", "dog/2.png"], {"cat/1.png": "cat", "dog/2.png": "dog"}, None),
    ],
)
def test_dropped_folders_give_their_classes_and_the_job_says_which_folder_became_which(
    page, login, screenshot, project_factory, member_of, paths, expected, note
):
    # Given a manager on the import page with "folders are classes" ticked
    project = project_factory(name="Dropped folders", slug="dropped-folders")
    member_of(project, Role.MANAGER, "maria")
    login("maria")
    page.goto(reverse("labeling:import", args=[project.slug]))
    page.check("#labels-from-folders")

    # When they drop the folders and upload
    page.evaluate(DROP_FOLDERS, [{"path": p, "bytes": png(n)} for n, p in enumerate(paths)])
    expect(page.locator("#upload-status")).to_contain_text(f"{len(paths)} files selected")
    page.click("#upload-button")

    # Then the images have their classes, and the job lists each folder with its class
    job = page.locator(".job[data-status=succeeded]")
    expect(job).to_be_visible(timeout=30_000)
    expect(job).to_contain_text(f"imported: {len(paths)}")
    rows = job.locator("table.folder-classes tbody tr")
    expect(rows).to_have_count(len(set(expected.values())))
    for name, label in expected.items():
        expect(rows.filter(has_text=name.rsplit("/", 1)[0])).to_contain_text(label)
    if note:
        expect(job.locator(".top-folder")).to_have_text(note)
    else:
        expect(job.locator(".top-folder")).to_have_count(0)
    screenshot("import-dropped-one-folder" if note else "import-dropped-two-folders")
    labels = {r.item.original_name: r.classes.get().path for r in ResolvedLabel.objects.filter(project=project)}
    assert labels == expected

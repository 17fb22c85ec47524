"""The import job card after "folders are classes": the folder table counts the files imported from each folder
("3 of 4" when one was refused), as the classes line and `manage.py import_images` do; the Problems section lists
every file by name, A to Z, beside the kind the table by kind counts it under, and its heading says how many it
lists."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from labeling.models import Item, JobStatus, Role
from labeling.services.imports import batches, import_job_create, import_run
from tests.factories import page_client, page_import, png_bytes

pytestmark = pytest.mark.django_db

CORRUPT = png_bytes(999)[:60]  # a PNG cut short: its header reads, its pixels do not


@pytest.fixture
def page(project, member_of) -> Client:
    return page_client(member_of(project, Role.MANAGER))


class _Tables(HTMLParser):
    """Each table's rows of cell texts by the table's class, and each <summary>'s text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.captions: dict[str, str] = {}
        self.summaries: list[str] = []
        self._table = self._cell = self._text = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("class", "")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th", "summary", "caption"):
            self._text = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._text).split()))
        elif tag == "summary":
            self.summaries.append(" ".join("".join(self._text).split()))
        elif tag == "caption":
            self.captions[self._table] = " ".join("".join(self._text).split())

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def job_card(page, project, job) -> _Tables:
    html = page.get(reverse("labeling:job_status", args=[project.slug, job.pk])).content.decode()
    parsed = _Tables()
    parsed.feed(html)
    return parsed


def test_the_folder_table_counts_the_files_imported_from_each_folder(
    project, page, django_capture_on_commit_callbacks, tmp_path
):
    # Given a picked folder pets whose dog folder holds 3 images and a corrupt one, and a folder of 6 files where 5
    # are refused
    files = {f"pets/dog/{n}.png": png_bytes(n) for n in range(3)}
    files["pets/dog/bad.png"] = CORRUPT
    files["pets/cat/1.png"] = png_bytes(10)
    files |= {f"pets/bad/x/{n}.png": png_bytes(900 + n)[: 50 + n] for n in range(5)}
    files["pets/bad/x/good.png"] = png_bytes(20)

    # When it is imported with "folders are classes"
    job = page_import(page, project, files, django_capture_on_commit_callbacks, labels_from_folders=True,
                      dropped_folder="pets")  # fmt: skip

    # Then each folder's row counts what was imported, and says of how many when some were refused
    assert Item.objects.filter(project=project).count() == 5
    card = job_card(page, project, job)
    assert card.tables["folder-classes"] == [
        ["Folder", "Class", "Files imported"],
        ["pets/bad/x", "bad / x", "1 of 6"],
        ["pets/cat", "cat", "1"],
        ["pets/dog", "dog", "3 of 4"],
    ]
    # as the classes made from the labels count them
    assert {c["name"]: c["files"] for c in job.result["new_classes"]} == {"bad / x": 1, "cat": 1, "dog": 3}

    # and `manage.py import_images` says the same of the same folder
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    Item.objects.filter(project=project).delete()
    out = io.StringIO()
    call_command("import_images", project.slug, str(tmp_path / "pets"), "--labels-from-folders", stdout=out)
    assert "  dog -> dog (3 of 4 files imported)\n" in out.getvalue()
    assert "  bad/x -> bad / x (1 of 6 files imported)\n" in out.getvalue()
    assert "  cat -> cat (1 file)\n" in out.getvalue()


def test_problems_list_every_file_by_name_beside_the_kind_the_table_counts(
    project, page, django_capture_on_commit_callbacks
):
    # Given five files that are refused: three corrupt PNGs, a text file and an SVG, in no order
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>'
    files = {"corrupt_3.png": CORRUPT, "corrupt_2.png": CORRUPT + b"2", "notes.txt": b"hello\n"}
    files |= {"corrupt_1.png": CORRUPT + b"1", "vec.svg": svg}

    # When they are imported
    job = page_import(page, project, files, django_capture_on_commit_callbacks)

    # Then the list says truthfully that it lists all five, A to Z
    card = job_card(page, project, job)
    assert "Files by name, A to Z (all 5)" in card.summaries
    [names] = [rows for table, rows in card.tables.items() if table == "rejections"]
    assert names[0] == ["File", "Kind", "Problem"]
    assert [row[0] for row in names[1:]] == ["corrupt_1.png", "corrupt_2.png", "corrupt_3.png", "notes.txt", "vec.svg"]
    assert names[4][2] == "a text file, not an image"
    # and the table by kind counts the files under the kinds the list names beside each
    assert card.captions["rejections rejections-by-reason"] == "Problems by kind (every file counted)"
    by_kind = {kind: int(n) for kind, n in card.tables["rejections rejections-by-reason"][1:]}
    listed: dict[str, int] = {}
    for _, kind, _ in names[1:]:
        listed[kind] = listed.get(kind, 0) + 1
    assert by_kind == listed
    assert sum(by_kind.values()) == 5


def test_the_heading_says_how_many_of_the_files_it_names(project, page, django_capture_on_commit_callbacks):
    # Given 205 files that are not images: more than the 200 the card lists
    files = {f"e{n:03}.png": f"not an image {n}".encode() for n in range(203)} | {"a.txt": b"a", "b.txt": b"b"}

    # When they are imported
    job = page_import(page, project, files, django_capture_on_commit_callbacks)

    # Then the heading says it shows the first 200 of the 205 named, and lists them from the start of the alphabet
    card = job_card(page, project, job)
    assert "Files by name, A to Z (the first 200 of 205 named)" in card.summaries
    rows = card.tables["rejections"][1:]
    assert len(rows) == 200
    assert [r[0] for r in rows[:3]] == ["a.txt", "b.txt", "e000.png"]
    assert re.fullmatch(r"e\d{3}\.png", rows[-1][0])


class _Killed(BaseException):
    """The worker process killed mid-run: nothing in the run catches it, the job stays running."""


def test_a_resumed_import_counts_the_files_imported_before_it_stopped(project, tmp_path, monkeypatch):
    # Given a folder of two class folders, 4 dog images (one corrupt) and 2 cat images, read 2 files a batch
    files = {f"dog/{n}.png": png_bytes(n) for n in range(3)} | {"dog/bad.png": CORRUPT}
    files |= {f"cat/{n}.png": png_bytes(10 + n) for n in range(2)}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(batches, "BATCH_FILES", 2)
    job = import_job_create(
        project=project, sources=[{"type": "folder", "path": str(tmp_path), "name": "pets"}], labels_from_folders=True
    )

    # When the worker dies after its first batches and the broker delivers the task again
    stored = batches.items_store
    calls = []

    def die_on_the_third(items):
        calls.append(1)
        if len(calls) == 3:
            raise _Killed
        return stored(items)

    monkeypatch.setattr(batches, "items_store", die_on_the_third)
    with pytest.raises(_Killed):
        import_run(job_id=job.pk, threads=1)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert 0 < job.result["imported"] < 5
    import_run(job_id=job.pk, threads=1)

    # Then the folder table counts every image imported, before and after the restart
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["imported"] == Item.objects.filter(project=project).count() == 5
    rows = {r["folder"]: (r["files"], r["offered"]) for r in job.result["folder_classes"]["folders"]}
    assert rows == {"cat": (2, 2), "dog": (3, 4)}

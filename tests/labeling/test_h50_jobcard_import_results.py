"""The import job card says what an import did and did not do, in that order of need: the files refused come before
a long folder table (folded past 20 folders); a labels CSV for images already imported says which labels from an
earlier import it replaced, and its headline what its labels did ("3 labels applied, 1 replaced", no "0 / 0");
a truncated file's reason is plain words; a CSV file name several items carry is an "ambiguous file name"."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from labeling.models import Item, Job, JobStatus
from tests.factories import api_client, page_import, png_bytes

pytestmark = pytest.mark.django_db


def card(manager_page, project, job) -> str:
    return manager_page.get(reverse("labeling:job_status", args=[project.slug, job.pk])).content.decode()


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def attach_labels(manager_page, project, capture, rows: str) -> Job:
    """The import page's "Labels CSV for images already imported" form, run to its end."""
    csv = SimpleUploadedFile("labels.csv", rows.encode(), content_type="text/csv")
    with capture(execute=True):
        manager_page.post(reverse("labeling:import", args=[project.slug]), {"action": "upload", "csv": csv})
    job = Job.objects.filter(project=project).latest("created_at")
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def test_a_labels_csv_that_replaces_an_import_label_says_which(
    project, manager_page, manager, django_capture_on_commit_callbacks
):
    # Given images imported with their folders as classes (laptop, bag, hat)
    files = {"team/laptop/laptop_00.png": png_bytes(1), "team/bag/bag_00.png": png_bytes(2),
             "team/hat/hat_00.png": png_bytes(3)}  # fmt: skip
    page_import(manager_page, project, files, django_capture_on_commit_callbacks, labels_from_folders=True,
                dropped_folder="team")  # fmt: skip
    laptop = Item.objects.get(project=project, original_name__endswith="laptop_00.png")
    # When a labels CSV for them gives laptop_00 another class, bag_00 the same one and hat_00 a class by its name
    job = attach_labels(manager_page, project, django_capture_on_commit_callbacks,
                        "laptop_00.png,phone\nbag_00.png,bag\nhat_00.png,hat\n")  # fmt: skip
    # Then the label is replaced, as a team's corrected CSV asks, and the job counts and names the replacement
    assert [c.name for c in laptop.resolved.classes.all()] == ["phone"]
    detail = api_client(manager).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    assert detail["result"]["relabeled"] == 1
    assert detail["result"]["relabeled_files"] == [{"name": laptop.original_name, "before": "laptop", "after": "phone"}]
    html = card(manager_page, project, job)
    shown = text(html)
    assert "1 label replaced" in shown
    assert f"{laptop.original_name} laptop phone" in shown
    # and its headline says what its labels did, not "0 / 0 · 0 imported" over a full progress bar
    assert "3 labels applied, 1 replaced" in shown
    assert "0 / 0" not in shown
    assert "0 imported" not in shown.split("3 labels applied")[0]
    assert 'role="progressbar"' not in html


def test_a_labels_csv_that_changes_no_import_label_names_no_replacement(
    project, manager_page, django_capture_on_commit_callbacks
):
    # Given an image imported as cat
    page_import(manager_page, project, {"pets/cat/1.png": png_bytes(4)}, django_capture_on_commit_callbacks,
                labels_from_folders=True, dropped_folder="pets")  # fmt: skip
    # When a labels CSV gives it cat again
    job = attach_labels(manager_page, project, django_capture_on_commit_callbacks, "1.png,cat\n")
    # Then nothing is called replaced
    assert "relabeled" not in job.result
    shown = text(card(manager_page, project, job))
    assert "1 label applied" in shown
    assert "replaced" not in shown


@pytest.mark.parametrize(("folders", "folded"), [(25, True), (3, False)])
def test_refused_files_come_before_the_folder_table_which_folds_when_long(
    project, manager_page, django_capture_on_commit_callbacks, folders, folded
):
    # Given a picked folder of class folders, one of which holds a file cut short
    files = {f"team/class_{n:02d}/a.png": png_bytes(n) for n in range(folders)}
    files["team/class_00/cut.png"] = png_bytes(999)[:60]
    job = page_import(manager_page, project, files, django_capture_on_commit_callbacks, labels_from_folders=True,
                      dropped_folder="team")  # fmt: skip
    html = card(manager_page, project, job)
    # Then the refused file is listed above the folder table
    assert html.index("Problems by kind") < html.index("Files by name") < html.index("folders read as classes")
    assert html.index("team/class_00/cut.png") < html.index("folders read as classes")
    # and the table is folded when it is long, open when it is short; why "team" is no class is said either way
    details = re.search(r'<details class="folder-classes"([^>]*)>', html).group(1)
    assert ("open" not in details) is folded
    assert html.index('<p class="top-folder">') < html.index('<details class="folder-classes"')


def test_a_truncated_jpeg_is_refused_in_plain_words(project, manager_page, django_capture_on_commit_callbacks):
    # Given a JPEG whose last bytes are missing
    noise = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG")
    cut = buffer.getvalue()[:-55]
    # When it is imported
    job = page_import(
        manager_page, project, {"truncated.jpg": cut, "ok.png": png_bytes(5)}, django_capture_on_commit_callbacks
    )
    # Then its reason says the file ends early, without the decoder's bracketed text
    reason = "truncated or corrupt image: the file ends before the image is complete"
    assert [e["reason"] for e in job.errors] == [reason]
    assert f"truncated.jpg truncated or corrupt {reason}" in text(card(manager_page, project, job))
    assert job.result["rejected_by_reason"] == {"truncated or corrupt": 1}


def test_a_csv_file_name_that_several_items_carry_is_an_ambiguous_file_name(
    project, manager_page, manager, django_capture_on_commit_callbacks
):
    # Given two items named x.png in two folders
    page_import(manager_page, project, {"mixed/Katze/x.png": png_bytes(6), "mixed/Hund/x.png": png_bytes(7)},
                django_capture_on_commit_callbacks)  # fmt: skip
    # When a labels CSV names x.png
    job = attach_labels(manager_page, project, django_capture_on_commit_callbacks, "x.png,ok\n")
    # Then nothing is applied, and the row is counted as an ambiguous file name naming both items, not as a label
    # for no item
    assert job.result["labeled"] == 0
    assert job.result["rejected_by_reason"] == {"ambiguous file name": 1}
    shown = text(card(manager_page, project, job))
    assert "ambiguous file name" in shown
    assert "label for no item" not in shown
    names = sorted(Item.objects.filter(project=project).values_list("original_name", flat=True))
    assert f"name matches several items ({names[0]}, {names[1]}); write the path in the CSV" in shown

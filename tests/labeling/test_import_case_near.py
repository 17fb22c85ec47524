"""A labels CSV whose class path is a class the project has but for capitals or the spaces around "/" ("Circle / Red",
"Square/Green", "STAR" beside circle / red, square / green, star) makes the class (a team may mean it), and names the
class it is close to, as a typo of one letter is named: on the import page, in the API's result and in the output of
`manage.py import_images`. Before, only a one-level difference was compared, so "Circle / Red" (two levels in other
capitals) made a parallel taxonomy without a word."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Job, JobStatus, LabelClass, ResolvedLabel, Role
from labeling.services.projects import label_classes_from_paths
from tests.factories import page_client, png_bytes, token_client, upload

pytestmark = pytest.mark.django_db

LABELS = "a.png,Circle / Red\nb.png,Square/Green\nc.png,STAR\nd.png,circle/rde\ne.png,circle / red\n"


@pytest.fixture
def manager(project, member_of):
    label_classes_from_paths(project=project, paths=["circle/red", "square/green", "star"])
    return member_of(project, Role.MANAGER, "boss")


def images() -> dict[str, bytes]:
    return {name: png_bytes(n) for n, name in enumerate(["a.png", "b.png", "c.png", "d.png", "e.png"])}


def card_text(client, project, job) -> str:
    """The job's card as the import page shows it."""
    html = client.get(reverse("labeling:job_status", args=[project.slug, job.pk])).content.decode()
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_import_page_names_the_class_a_path_in_other_capitals_is_close_to(
    project, manager, django_capture_on_commit_callbacks
):
    # Given a project with circle / red, square / green and star, and its images imported without labels
    page = page_client(manager)
    with django_capture_on_commit_callbacks(execute=True):
        page.post(
            reverse("labeling:import", args=[project.slug]),
            {"action": "upload", "files": [SimpleUploadedFile(n, d) for n, d in images().items()]},
        )

    # When the "Labels CSV for images already imported" form attaches labels in other capitals and spacing
    csv = SimpleUploadedFile("labels.csv", LABELS.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        page.post(reverse("labeling:import", args=[project.slug]), {"action": "upload", "csv": csv})
    job = Job.objects.filter(project=project).latest("created_at")
    assert job.status == JobStatus.SUCCEEDED, job.message

    # Then the job's card on the import page names each new class with the class it is close to
    shown = card_text(page, project, job)
    assert "4 new classes made from the labels" in shown
    assert (
        "Circle / Red (1 file; close to circle / red: a typo?), STAR (1 file; close to star: a typo?), "
        "Square / Green (1 file; close to square / green: a typo?), circle / rde (1 file; close to circle / red: "
        "a typo?)." in shown
    )
    # and the classes are made and used all the same: the import merges nothing on its own
    assert LabelClass.objects.filter(project=project, parent=None, name="Circle").exists()
    assert ResolvedLabel.objects.get(item__original_name="a.png").classes.get().path == "Circle / Red"
    assert ResolvedLabel.objects.get(item__original_name="e.png").classes.get().path == "circle / red"


def test_the_api_result_names_the_class_a_path_in_other_capitals_is_close_to(
    project, manager, django_capture_on_commit_callbacks
):
    # Given a script that posts the images with a labels CSV in other capitals
    body = {
        "files": [upload(n, d) for n, d in images().items()],
        "csv": [upload("labels.csv", LABELS.encode())],
    }
    client = token_client(manager)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/projects/{project.slug}/imports/", body, format="multipart")
    assert answer.status_code in (201, 202), answer.content

    # When it reads the finished job
    [job] = Job.objects.filter(project=project)
    result = client.get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()["result"]

    # Then result.new_classes names the class each new path is close to
    near = {row["path"]: row["near"] for row in result["new_classes"]}
    assert near == {
        "Circle/Red": "circle / red",
        "Square/Green": "square / green",
        "STAR": "star",
        "circle/rde": "circle / red",
    }
    assert result["labeled"] == 5


def test_import_images_prints_the_class_a_path_in_other_capitals_is_close_to(project, manager, tmp_path):
    # Given a folder of images and a labels CSV in other capitals
    folder = tmp_path / "images"
    folder.mkdir()
    for name, data in images().items():
        (folder / name).write_bytes(data)
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS)

    # When the command imports them
    out = io.StringIO()
    call_command("import_images", project.slug, str(folder), "--csv", str(labels), verbosity=0, stdout=out)

    # Then it names the class each new path is close to
    printed = out.getvalue()
    assert "4 new classes made from the labels:" in printed
    assert "  Circle / Red (1 file; close to circle / red: a typo?)" in printed
    assert "  Square / Green (1 file; close to square / green: a typo?)" in printed
    assert "  STAR (1 file; close to star: a typo?)" in printed

"""The same image in two class folders: the copy read first keeps its class, and the other's reason says that its
class differed and was not applied, counted as a label conflict, not as a harmless duplicate
(labeling.services.imports.duplicates)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Job, JobStatus, ResolvedLabel, Role
from tests.factories import page_client, page_import, png_bytes, token_client, upload

pytestmark = pytest.mark.django_db


def labels(project) -> dict[str, str]:
    return {r.item.original_name: r.classes.get().path for r in ResolvedLabel.objects.filter(project=project)}


def test_a_copy_in_another_class_folder_is_a_label_conflict_and_the_first_copy_keeps_its_class(
    project, member_of, django_capture_on_commit_callbacks
):
    # Given a dropped folder where a clock photo was also put in phone/ (sent first), and a copy inside clock/ itself
    page = page_client(member_of(project, Role.MANAGER))
    clock = png_bytes(1)
    files = {
        "team_photos/phone/from_clock.png": clock,
        "team_photos/phone/phone_01.png": png_bytes(2),
        "team_photos/clock/clock_01.png": clock,
        "team_photos/clock/clock_02.png": png_bytes(3),
        "team_photos/clock/clock_02_copy.png": png_bytes(3),
    }

    # When it is imported with "Folders are classes"
    job = page_import(page, project, files, django_capture_on_commit_callbacks, labels_from_folders=True,
                      dropped_folder="team_photos")  # fmt: skip

    # Then the copy sent first keeps its class, and the other's reason says its class was not applied
    assert labels(project)["team_photos/phone/from_clock.png"] == "phone"
    assert "team_photos/clock/clock_01.png" not in labels(project)
    reasons = {e["name"]: e["reason"] for e in job.errors}
    assert reasons["team_photos/clock/clock_01.png"] == (
        "duplicate of team_photos/phone/from_clock.png, which came first and keeps its class phone; "
        "this copy's class clock was not applied"
    )
    # and a copy within one class folder is an ordinary duplicate, as before
    assert reasons["team_photos/clock/clock_02_copy.png"] == "duplicate of team_photos/clock/clock_02.png"
    # and both are skipped as duplicates, counted under kinds of their own
    assert job.result["duplicates"] == 2
    assert job.result["rejected_by_reason"] == {"duplicate": 1, "label conflict on a duplicate": 1}
    # and the import page's job card shows the kind and the reason
    text = unescape(re.sub(r"\s+", " ", page.get(reverse("labeling:import", args=[project.slug])).content.decode()))
    assert '<td>label conflict on a duplicate</td><td class="count">1</td>' in text
    assert "this copy's class clock was not applied" in text


def test_a_copy_of_an_image_imported_before_says_which_class_the_stored_one_keeps(
    project, member_of, django_capture_on_commit_callbacks
):
    api = token_client(member_of(project, Role.MANAGER))

    def api_import(names: dict[str, bytes]) -> Job:
        data = {"files": [upload(n.rsplit("/", 1)[-1], d) for n, d in names.items()], "names": list(names),
                "labels_from_folders": "true"}  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            answer = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")
        job = Job.objects.get(pk=answer.json()["id"])
        assert job.status == JobStatus.SUCCEEDED, job.message
        return job

    # Given a clock photo imported as clock
    api_import({"clock/a.png": png_bytes(1)})

    # When a script imports the same bytes under phone/, and again under clock/
    job = api_import({"phone/b.png": png_bytes(1), "clock/c.png": png_bytes(1)})

    # Then the stored image keeps clock, and the copy in phone/ says its class was not applied
    assert labels(project) == {"clock/a.png": "clock"}
    assert {e["name"]: e["reason"] for e in job.errors} == {
        "phone/b.png": "duplicate of clock/a.png, imported before, which keeps its class clock; "
        "this copy's class phone was not applied",
        "clock/c.png": "duplicate of clock/a.png",
    }
    assert job.result["rejected_by_reason"] == {"duplicate": 1, "label conflict on a duplicate": 1}

"""A 404 for an id the project does not have says so in a user's words ("No such job in this project."), not in the
server's ("No Job matches the given query." named the model class); an id no row can have says the same."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from labeling.models import Job, JobKind, JobStatus, Role

pytestmark = pytest.mark.django_db

HUGE = 2**64


@pytest.fixture
def two_projects(project_factory, member_of):
    """A manager of `ours` and a finished export job of another project (another project's id is no id of ours)."""
    ours, theirs = project_factory(slug="ours"), project_factory(slug="theirs")
    job = Job.objects.create(project=theirs, kind=JobKind.EXPORT_DATASET, status=JobStatus.SUCCEEDED)
    client = APIClient()
    client.force_authenticate(member_of(ours, Role.MANAGER))
    return client, job


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("jobs/{job}/", "No such job in this project."),
        ("jobs/{job}/download/", "No such job in this project."),
        (f"jobs/{HUGE}/", "No such job in this project."),
        (f"jobs/{HUGE}/download/", "No such job in this project."),
        ("items/{job}/", "No such item in this project."),
        (f"items/{HUGE}/", "No such item in this project."),
        ("runs/{job}/", "No such training run in this project."),
        ("models/{job}/", "No such model version in this project."),
    ],
)
def test_a_missing_id_is_a_404_in_words(two_projects, path, words):
    client, job = two_projects
    answer = client.get(f"/api/projects/ours/{path.format(job=job.pk)}")
    assert answer.status_code == 404
    assert answer.json() == {"detail": words}


def test_a_download_whose_file_is_gone_from_disk_does_not_name_its_place(project, member_of):
    # Given a finished export whose file someone deleted on the server (not expired: the row still names it)
    job = Job.objects.create(
        project=project, kind=JobKind.EXPORT_DATASET, status=JobStatus.SUCCEEDED,
        result={"files": [f"{project.slug}/dataset-gone.zip"]},
    )  # fmt: skip
    client = APIClient()
    client.force_authenticate(member_of(project, Role.MANAGER))

    answer = client.get(f"/api/projects/{project.slug}/jobs/{job.pk}/download/")

    assert answer.status_code == 404
    assert answer.json() == {"detail": "This job's file is no longer on the server."}

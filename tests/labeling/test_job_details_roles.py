"""A job's progress fragment (/p/<slug>/jobs/<id>/) shows its message, results and rejected files to the roles that
read metrics, as the jobs API does: an annotator read every rejected file name, which CSV rows gave which labels and a
label-error search's outcome there, while the API and the label-error page refused them."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(project, member_of):
    finished = Job.objects.create(
        project=project, kind=JobKind.IMPORT, status=JobStatus.SUCCEEDED, done=2, total=2,
        message="Imported from /srv/imports/team-a", result={"imported": 1, "rejected": 1},
        errors=[{"name": "/srv/imports/team-a/secret.png", "reason": "truncated or corrupt"}],
    )  # fmt: skip
    failed = Job.objects.create(
        project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.FAILED, done=0, total=1,
        message="could not read /var/lib/labelloop/embeddings/7.npy",
    )  # fmt: skip
    return project, finished, failed


def _fragment(project, job, role, member_of) -> str:
    client = Client()
    client.force_login(member_of(project, role))
    answer = client.get(reverse("labeling:job_status", args=[project.slug, job.pk]))
    assert answer.status_code == 200
    return answer.content.decode()


@pytest.mark.parametrize("role", [Role.ANNOTATOR])
def test_an_annotator_sees_kind_status_and_progress_only(jobs, member_of, role):
    project, finished, failed = jobs
    html = _fragment(project, finished, role, member_of)
    assert "Succeeded" in html
    assert "2 / 2" in html
    for secret in ("/srv/imports", "secret.png", "imported: 1", "truncated or corrupt"):
        assert secret not in html, secret
    html = _fragment(project, failed, role, member_of)
    assert "Failed:" in html
    assert "a manager or ML engineer sees the reason" in html
    assert "/var/lib" not in html


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.MANAGER, Role.ML_ENGINEER])
def test_the_roles_that_read_metrics_see_the_details(jobs, member_of, role):
    project, finished, failed = jobs
    html = _fragment(project, finished, role, member_of)
    for detail in ("Imported from /srv/imports/team-a", "secret.png", "imported: 1", "truncated or corrupt"):
        assert detail in html, detail
    assert "could not read /var/lib/labelloop/embeddings/7.npy" in _fragment(project, failed, role, member_of)

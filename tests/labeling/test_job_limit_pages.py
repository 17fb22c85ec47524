"""The pages that start bounded jobs (dataset export, batch inference) refuse past the job limit the way the API does:
429 with Retry-After, so a browser extension or script driving the page knows when to ask again, and nothing is
created."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.job_limits import JOB_LIMIT_RETRY_AFTER_SECONDS
from tests.factories import png_bytes, upload, zip_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(project_factory, label_class_factory, item_factory, member_of):
    """A project with one labeled item and a model version, and one export already queued by the manager (the
    per-user limit is 1)."""
    from labeling.services.annotations import annotation_create
    from training.models import ModelVersion

    project = project_factory(slug="owls", name="Owls")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["barn", "snowy"])]
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="test", class_ids=[c.pk for c in classes]
    )
    annotation_create(item=item_factory(project=project), user=member_of(project, Role.ANNOTATOR, "ann"),
                      class_ids=[classes[0].pk])  # fmt: skip
    return project


@pytest.fixture
def manager(project, member_of, settings):
    settings.LABELLOOP_MAX_QUEUED_JOBS_PER_USER = 1
    user = member_of(project, Role.MANAGER, "boss")
    Job.objects.create(project=project, kind=JobKind.EXPORT_DATASET, status=JobStatus.QUEUED, created_by=user,
                       params={"format": "jsonl"})  # fmt: skip
    return user


def assert_limit_page(answer) -> None:
    assert answer.status_code == 429
    assert answer["Retry-After"] == str(JOB_LIMIT_RETRY_AFTER_SECONDS)
    page = answer.content.decode()
    assert "You already have 1 exports or inference jobs queued or running (at most 1)" in page
    assert "Wait for one to finish, then start this one again." in page


def test_the_dataset_export_page_429_says_when_to_retry(project, manager):
    client = Client()
    client.force_login(manager)

    answer = client.post(reverse("labeling:exports", args=[project.slug]), {"format": "csv", "val_fraction": "0.1"})

    assert_limit_page(answer)
    assert Job.objects.count() == 1


def test_the_batch_inference_form_429_says_when_to_retry(project, manager):
    client = Client()
    client.force_login(manager)

    batch = upload("batch.zip", zip_of({"1.png": png_bytes(1)}))
    answer = client.post(reverse("training:model_exports", args=[project.slug]), {"file": batch})

    assert_limit_page(answer)
    assert Job.objects.count() == 1


def test_the_pages_send_no_retry_after_when_they_accept_or_refuse_for_another_reason(project, manager, settings):
    settings.LABELLOOP_MAX_QUEUED_JOBS_PER_USER = 5
    client = Client()
    client.force_login(manager)
    exports = reverse("labeling:exports", args=[project.slug])

    invalid = client.post(exports, {"format": "nonsense"})
    started = client.post(exports, {"format": "csv", "val_fraction": "0.1"})

    assert invalid.status_code == 400
    assert started.status_code == 302
    assert not invalid.has_header("Retry-After")
    assert not started.has_header("Retry-After")


def test_the_api_429_still_sends_the_same_retry_after(project, manager):
    client = APIClient()
    client.force_authenticate(manager)

    answer = client.post(f"/api/projects/{project.slug}/exports/dataset/", {"format": "csv"}, format="json")

    assert answer.status_code == 429
    assert answer["Retry-After"] == str(JOB_LIMIT_RETRY_AFTER_SECONDS)
    assert Job.objects.count() == 1

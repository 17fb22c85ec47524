"""A finished job's message says it finished, as a finished model export's "Done" does, not its last stage."""

from __future__ import annotations

import pytest

from labeling.models import JobStatus, Role
from tests.factories import token_client
from training.tasks import label_errors_find_task

pytestmark = pytest.mark.django_db


def test_a_finished_label_error_search_says_done(project_factory, label_class_factory, member_of):
    # Given a search started through the API (its worker run by hand: the task the API queues)
    project = project_factory(slug="few")
    label_class_factory(project=project, name="cat")
    client = token_client(member_of(project, Role.REVIEWER, "rita"))
    started = client.post(f"/api/projects/{project.slug}/label-errors/")
    assert started.status_code == 202, started.content

    # When the worker has run it
    label_errors_find_task(project.pk, started.json()["id"])

    # Then polling the job shows it finished, and says so
    job = client.get(started.json()["url"]).json()
    assert job["status"] == JobStatus.SUCCEEDED, job["message"]
    assert job["message"] == "Done"


def test_a_finished_dataset_export_says_done(project_factory, label_class_factory, item_factory, member_of):
    # Given a dataset export started through the API, with its task run eagerly as the worker would
    from labeling.services.annotations import annotation_create
    from labeling.tasks import dataset_export_task

    project = project_factory(slug="csv")
    cat = label_class_factory(project=project, name="cat")
    annotation_create(item=item_factory(project=project), user=member_of(project, Role.ANNOTATOR, "ann"),
                      class_ids=[cat.pk])  # fmt: skip
    client = token_client(member_of(project, Role.MANAGER, "mia"))
    started = client.post(f"/api/projects/{project.slug}/exports/dataset/", {"format": "csv"}, format="json")
    assert started.status_code == 202, started.content
    dataset_export_task(started.json()["id"])

    # Then polling the job shows it finished and says "Done", not its last "Writing n / n"
    job = client.get(started.json()["url"]).json()
    assert job["status"] == JobStatus.SUCCEEDED, job["message"]
    assert job["message"] == "Done"

"""An export whose filters match no item is refused by the exports page and the API as `manage.py export_dataset`
refuses it: the reason is said, nothing is written and no job is made (labeling/services/exports/nothing_to_export)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Job, Role
from tests.factories import api_client, page_client

pytestmark = pytest.mark.django_db

REASON = "Nothing to export from zoo: none of its 24 labeled items matches min annotators 3. Nothing was written."


def test_the_exports_page_refuses_an_export_that_matches_no_item(labeled_project, member_of):
    project, *_ = labeled_project
    client = page_client(member_of(project, Role.MANAGER))

    answer = client.post(
        reverse("labeling:exports", args=[project.slug]),
        {"format": "csv", "min_annotators": "3", "val_fraction": "0.1"},
    )

    assert answer.status_code == 400
    html = answer.content.decode()
    assert REASON in html
    assert "Start export" in html  # the form is shown again
    assert not Job.objects.exists()


def test_the_api_refuses_an_export_that_matches_no_item(labeled_project, member_of):
    project, *_ = labeled_project
    client = api_client(member_of(project, Role.MANAGER))

    answer = client.post(
        f"/api/projects/{project.slug}/exports/dataset/", {"format": "csv", "min_annotators": 3}, format="json"
    )

    assert answer.status_code == 400
    assert answer.json() == {"detail": [REASON]}
    assert not Job.objects.exists()


def test_a_project_with_nothing_labeled_is_refused_by_the_api(project_factory, item_factory, member_of):
    project = project_factory(slug="bare")
    item_factory(project=project)
    client = api_client(member_of(project, Role.MANAGER))

    answer = client.post(f"/api/projects/{project.slug}/exports/dataset/", {"format": "csv"}, format="json")

    assert answer.status_code == 400
    assert answer.json() == {
        "detail": ["Nothing to export from bare: it has no labeled items yet. Nothing was written."]
    }
    assert not Job.objects.exists()

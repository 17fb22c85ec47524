"""The queue's item carries what the items API calls it: `original_name` and `thumbnail_url` (with the older
`thumb_url`, the same URL, kept for existing clients). The labeling step's query budget, which these fields must not
raise, is tests/labeling/test_label_views.py::test_a_labeling_step_over_the_api_stays_within_its_query_budget."""

from __future__ import annotations

import pytest

from labeling.models import Role
from tests.factories import token_client
from tests.schema_conformance import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(slug="birds", holdout_fraction=0.0, review_sample_rate=0.0)
    cat = label_class_factory(project=project, name="cat")
    items = [item_factory(project=project, priority=p, original_name=f"field/{n}.jpg") for n, p in ((1, 0.9), (2, 0.1))]
    return project, cat, items, token_client(member_of(project, Role.ANNOTATOR, "ann"))


def test_the_next_item_has_the_name_and_thumbnail_url_the_items_api_gives(world):
    project, _, items, api = world
    # When an annotator's script asks for the next item
    answer = api.get(f"/api/projects/{project.slug}/next/")
    served = answer.json()["item"]

    # Then it has the file name and the thumbnail under the items API's names, and thumb_url is that same URL
    detail = api.get(f"/api/projects/{project.slug}/items/{served['id']}/").json()
    assert served["id"] == items[0].pk
    assert served["original_name"] == detail["original_name"] == "field/1.jpg"
    assert served["thumbnail_url"] == detail["thumbnail_url"] == served["thumb_url"]
    assert served["original_url"] == detail["original_url"]
    assert_matches_schema(answer, "/api/projects/{slug}/next/")


def test_an_undone_item_comes_back_with_the_same_fields(world):
    project, cat, _, api = world
    base = f"/api/projects/{project.slug}"
    served = api.get(f"{base}/next/").json()["item"]
    api.post(f"{base}/annotations/", {"item_id": served["id"], "class_ids": [cat.pk]}, format="json")
    undone = api.post(f"{base}/undo/", {}, format="json")
    assert undone.status_code == 200
    assert undone.json()["item"]["original_name"] == "field/1.jpg"
    assert undone.json()["item"]["thumbnail_url"] == served["thumbnail_url"]
    assert_matches_schema(undone, "/api/projects/{slug}/undo/", "POST")

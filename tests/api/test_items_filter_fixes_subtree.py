"""The items API: label_class stands for the class's subtree, as in a dataset export's filter, with a bounded
number of queries; its media URLs are the queue's (site-relative paths), not absolute ones."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from labeling.models import Role, TaskType
from labeling.selectors.media import item_media_url
from labeling.services.annotations import annotation_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def digits(project_factory, item_factory, label_class_factory, member_of):
    """even/{0,2,4,6,8} and odd/{1,3,5,7,9}, one item per digit; a manager's API client."""
    project = project_factory(slug="digits", holdout_fraction=0.0)
    parents = {"even": label_class_factory(project=project, name="even"),
               "odd": label_class_factory(project=project, name="odd")}  # fmt: skip
    leaves = [label_class_factory(project=project, name=str(d), parent=parents["odd" if d % 2 else "even"])
              for d in range(10)]  # fmt: skip
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    items = [item_factory(project=project) for _ in range(10)]
    for item, leaf in zip(items, leaves, strict=True):
        annotation_create(item=item, user=annotator, class_ids=[leaf.pk])
    client = APIClient()
    client.force_authenticate(member_of(project, Role.MANAGER, "boss"))
    return {"project": project, "parents": parents, "leaves": leaves, "items": items, "client": client,
            "annotator": annotator}  # fmt: skip


def listed(client, **query) -> list[int]:
    answer = client.get("/api/projects/digits/items/", query)
    assert answer.status_code == 200, answer.content
    return sorted(row["id"] for row in answer.json()["results"])


def test_a_parent_class_lists_its_subtree(digits):
    items, client = digits["items"], digits["client"]
    assert listed(client, label_class=digits["parents"]["even"].pk) == [items[d].pk for d in (0, 2, 4, 6, 8)]
    assert listed(client, label_class=digits["parents"]["odd"].pk) == [items[d].pk for d in (1, 3, 5, 7, 9)]
    assert listed(client, label_class=digits["leaves"][4].pk) == [items[4].pk]


def test_an_item_with_two_labels_under_the_class_is_listed_once(
    project_factory, item_factory, label_class_factory, member_of
):
    project = project_factory(slug="tags", task_type=TaskType.MULTI)
    even = label_class_factory(project=project, name="even")
    zero, two = (label_class_factory(project=project, name=n, parent=even) for n in ("0", "2"))
    item = item_factory(project=project)
    annotation_create(item=item, user=member_of(project, Role.ANNOTATOR), class_ids=[zero.pk, two.pk])
    client = APIClient()
    client.force_authenticate(member_of(project, Role.MANAGER))
    answer = client.get("/api/projects/tags/items/", {"label_class": even.pk})
    assert [row["id"] for row in answer.json()["results"]] == [item.pk]


def test_the_query_count_does_not_grow_with_the_subtree(digits, label_class_factory):
    client, even = digits["client"], digits["parents"]["even"]

    def queries(class_id: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            listed(client, label_class=class_id)
        return len(captured)

    leaf, parent = queries(digits["leaves"][0].pk), queries(even.pk)
    for n in range(20):
        label_class_factory(project=digits["project"], name=f"more {n}", parent=even)
    assert queries(even.pk) == parent <= leaf + 1


def test_media_urls_are_the_same_site_relative_paths_as_the_queues(digits, item_factory, member_of):
    client, project = digits["client"], digits["project"]
    fresh = item_factory(project=project)
    queue = APIClient()
    queue.force_authenticate(member_of(project, Role.ANNOTATOR, "new"))
    served = queue.get("/api/projects/digits/next/").json()["item"]
    as_item = client.get(f"/api/projects/digits/items/{fresh.pk}/").json()
    assert served["id"] == fresh.pk
    assert (as_item["thumbnail_url"], as_item["original_url"]) == (served["thumb_url"], served["original_url"])
    digits["items"].append(fresh)
    for row in client.get("/api/projects/digits/items/").json()["results"]:
        sha = next(i.sha256 for i in digits["items"] if i.pk == row["id"])
        assert row["thumbnail_url"] == item_media_url(slug=project.slug, item_id=row["id"], sha256=sha, kind="thumb")
        assert row["original_url"] == item_media_url(slug=project.slug, item_id=row["id"], sha256=sha, kind="original")
    assert as_item["thumbnail_url"].startswith("/p/digits/media/")

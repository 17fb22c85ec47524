"""The queue API records when each image was shown, and lists and re-serves an annotator's skips."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from labeling.models import Annotation, Item, Role
from tests.factories import bulk_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project_factory, label_class_factory, member_of):
    project = project_factory(slug="birds", holdout_fraction=0.0)
    cat = label_class_factory(project=project, name="cat")
    items = bulk_items(project, 3)
    for item, priority in zip(items, (0.3, 0.2, 0.1), strict=True):
        Item.objects.filter(pk=item.pk).update(priority=priority)
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    client = APIClient()
    client.force_authenticate(annotator)
    return {"project": project, "cat": cat, "items": items, "annotator": annotator, "api": client}


def test_label_and_skip_store_the_shown_at_the_client_sends(world):
    api, base = world["api"], "/api/projects/birds"
    shown = timezone.now() - timedelta(seconds=3)
    first = api.get(f"{base}/next/").json()["item"]["id"]
    created = api.post(
        f"{base}/annotations/",
        {"item_id": first, "class_ids": [world["cat"].pk], "shown_at": shown.isoformat()},
        format="json",
    )
    assert created.status_code == 201
    second = api.get(f"{base}/next/").json()["item"]["id"]
    skipped = api.post(f"{base}/items/{second}/skip/", {"shown_at": shown.isoformat()}, format="json")
    assert skipped.status_code == 201
    assert Annotation.objects.get(pk=created.json()["id"]).shown_at == shown
    assert Annotation.objects.get(pk=skipped.json()["id"]).shown_at == shown
    # Without it (older clients), the label is still taken and the time left empty.
    third = api.get(f"{base}/next/").json()["item"]["id"]
    plain = api.post(f"{base}/annotations/", {"item_id": third, "class_ids": [world["cat"].pk]}, format="json")
    assert Annotation.objects.get(pk=plain.json()["id"]).shown_at is None


@pytest.mark.parametrize("shown_at", ["yesterday-ish", "an hour from now"])
def test_a_bad_or_future_shown_at_is_refused_and_changes_nothing(world, shown_at):
    if shown_at == "an hour from now":  # computed per run, so the test's id stays the same (pytest -n needs that)
        shown_at = (timezone.now() + timedelta(hours=1)).isoformat()
    api, base = world["api"], "/api/projects/birds"
    item = api.get(f"{base}/next/").json()["item"]["id"]
    label = api.post(
        f"{base}/annotations/", {"item_id": item, "class_ids": [world["cat"].pk], "shown_at": shown_at}, format="json"
    )
    skip = api.post(f"{base}/items/{item}/skip/", {"shown_at": shown_at}, format="json")
    assert (label.status_code, skip.status_code) == (400, 400)
    assert Annotation.objects.count() == 0


def test_the_skips_endpoint_lists_the_callers_skips_and_the_queue_serves_them_last(world, member_of):
    api, base, items = world["api"], "/api/projects/birds", world["items"]
    # Given an annotator who skips the two best items over the API
    for _ in range(2):
        item = api.get(f"{base}/next/").json()["item"]["id"]
        assert api.post(f"{base}/items/{item}/skip/", {}, format="json").status_code == 201
    # Then they see both, oldest skip first, with images to show
    listed = api.get(f"{base}/skips/").json()["results"]
    assert [s["item_id"] for s in listed] == [items[0].pk, items[1].pk]
    assert listed[0]["thumb_url"].endswith(f"/{items[0].pk}/thumb/?v={items[0].sha256[:16]}")
    assert api.get(f"{base}/skips/?limit=1").json()["results"][0]["item_id"] == items[0].pk
    # And the queue gives the third item, then the skipped ones again, and a skipped one takes a normal label
    served = []
    while (item := api.get(f"{base}/next/").json()["item"]) is not None:
        served.append(item["id"])
        response = api.post(
            f"{base}/annotations/", {"item_id": item["id"], "class_ids": [world["cat"].pk]}, format="json"
        )
        assert response.status_code == 201
    assert served == [items[2].pk, items[0].pk, items[1].pk]
    assert api.get(f"{base}/skips/").json()["results"] == []
    assert Annotation.objects.filter(skipped=False, undoes__isnull=True).count() == 3


def test_the_skips_endpoint_is_for_members_only(world, project_factory, member_of):
    outsider = APIClient()
    outsider.force_authenticate(member_of(project_factory(slug="elsewhere")))
    assert outsider.get("/api/projects/birds/skips/").status_code == 404
    assert APIClient().get("/api/projects/birds/skips/").status_code == 401
    assert world["api"].get("/api/projects/birds/skips/?limit=x").status_code == 400

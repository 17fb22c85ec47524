"""POST /api/projects/<slug>/undo/ with an annotation_id that is not the caller's latest label or skip: 409, nothing
changed, in words for a script (only the latest can be undone, and which that is), not the labeling page's ("this
page's undo was out of date ... another tab or window?"): an API client has no page or tab. The page keeps its words."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Annotation, Role
from tests.factories import page_client, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(slug="shapes", holdout_fraction=0.0)
    red = label_class_factory(project=project, name="red", hotkey="1")
    for n in range(4):
        item_factory(project=project, priority=100 - n)
    return {"project": project, "red": red, "manager": member_of(project, Role.MANAGER, "boss")}


def label_next(api, world) -> dict:
    """Label the next image through the API: {"id": annotation id, "item_id": image}."""
    base = f"/api/projects/{world['project'].slug}"
    served = api.get(f"{base}/next/").json()["item"]
    answer = api.post(f"{base}/annotations/", {"item_id": served["id"], "class_ids": [world["red"].pk]}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def test_an_api_undo_of_an_older_label_says_only_the_latest_can_be_undone(world):
    # Given a script that labeled two images through the API
    api = token_client(world["manager"])
    older, latest = label_next(api, world), label_next(api, world)

    # When it asks to undo the older one, twice
    url = f"/api/projects/{world['project'].slug}/undo/"
    answers = [api.post(url, {"annotation_id": older["id"]}, format="json") for _ in range(2)]

    # Then each is a 409 that says only the latest can be undone and names it, with no page or tab in it
    expected = (
        f"Not undone: only your latest label or skip can be undone, and annotation #{older['id']} is not it; "
        f"your latest is #{latest['id']}, the label “red” of image #{latest['item_id']}. Nothing changed."
    )
    assert [a.status_code for a in answers] == [409, 409]
    assert [a.json()["detail"] for a in answers] == [expected, expected]
    assert not Annotation.objects.filter(undoes__isnull=False).exists()
    # and undoing the latest one it names works
    assert api.post(url, {"annotation_id": latest["id"]}, format="json").status_code == 200


def test_an_api_undo_of_an_older_label_names_a_skip_that_is_latest(world):
    api = token_client(world["manager"])
    older = label_next(api, world)
    base = f"/api/projects/{world['project'].slug}"
    skipped = api.get(f"{base}/next/").json()["item"]["id"]
    skip = api.post(f"{base}/items/{skipped}/skip/", {}, format="json")
    assert skip.status_code in (200, 201), skip.content

    answer = api.post(f"{base}/undo/", {"annotation_id": older["id"]}, format="json")

    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert detail.startswith(f"Not undone: only your latest label or skip can be undone, and annotation #{older['id']}")
    assert f"the skip of image #{skipped}. Nothing changed." in detail


def test_the_page_keeps_its_words_for_an_undo_that_is_out_of_date(world):
    # Given the same two labels, and the labeling page's undo naming the older one (a card from before)
    api = token_client(world["manager"])
    older, latest = label_next(api, world), label_next(api, world)

    answer = page_client(world["manager"]).post(
        reverse("labeling:label_undo", args=[world["project"].slug]),
        {"annotation": str(older["id"])},
        HTTP_HX_REQUEST="true",
    )

    assert answer.status_code == 409
    assert (
        f"Not undone: this page's undo was out of date. Your last label “red” is now the one of image "
        f"#{latest['item_id']} (made in another tab or window?). Nothing changed." in unescape(answer.content.decode())
    )
    assert not Annotation.objects.filter(undoes__isnull=False).exists()

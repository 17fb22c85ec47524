"""h50 P13: POST /api/projects/<slug>/reviews/undo/ withdraws the caller's last verdict, as the review page does."""

import pytest

from labeling.models import Item, Review, ReviewTask, Role
from labeling.services.reviews import review_submit
from tests.factories import token_client
from tests.schema_conformance import assert_matches_schema

pytestmark = pytest.mark.django_db

PATH = "/api/projects/{slug}/reviews/undo/"


@pytest.fixture
def world(cat_dog_review):
    """One item "ann" labeled cat, corrected to dog by "rev" in its audit sample."""
    world = cat_dog_review(review_sample_rate=0.0, labeled=1, open_tasks=True)
    (item,), (task,) = world["items"], world["tasks"]
    review = review_submit(task=task, reviewer=world["rev"], verdict="correct", corrected_class_ids=[world["dog"].pk])
    return {**world, "item": item, "task": task, "review": review}


def _url(world) -> str:
    return PATH.format(slug=world["project"].slug)


def _label(item) -> set[str]:
    return set(Item.objects.get(pk=item.pk).resolved.classes.values_list("name", flat=True))


def test_the_api_undoes_the_named_verdict_and_a_retry_withdraws_nothing_more(world):
    client = token_client(world["rev"])
    review = world["review"]

    answer = client.post(_url(world), {"review_id": review.pk}, format="json")

    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "undone_review_id": review.pk,
        "verdict": "correct",
        "item": world["item"].pk,
        "reopened_tasks": [world["task"].pk],
    }
    assert_matches_schema(answer, "/api/projects/{slug}/reviews/undo/", "POST")
    assert _label(world["item"]) == {"cat"}
    assert ReviewTask.objects.get(pk=world["task"].pk).done is False

    again = client.post(_url(world), {"review_id": review.pk}, format="json")
    assert again.status_code == 404
    assert f"No verdict #{review.pk} of yours in this project" in again.json()["detail"]
    assert_matches_schema(again, "/api/projects/{slug}/reviews/undo/", "POST")
    nothing = client.post(_url(world), {}, format="json")
    assert nothing.status_code == 409
    assert nothing.json()["detail"].startswith("Nothing to undo")


def test_another_projects_verdict_is_404_and_an_annotator_may_not_undo(world, project_factory, member_of):
    other = project_factory()
    member_of(other, Role.REVIEWER, "rev")
    answer = token_client(world["rev"]).post(
        PATH.format(slug=other.slug), {"review_id": world["review"].pk}, format="json"
    )
    assert answer.status_code == 404
    assert token_client(world["ann"]).post(_url(world), {}, format="json").status_code == 403
    assert Review.objects.filter(pk=world["review"].pk).exists()
    assert _label(world["item"]) == {"dog"}

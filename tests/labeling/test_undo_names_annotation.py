"""An undo names the label it withdraws: a z pressed again because the answer to the first was lost withdraws nothing
more (one press never withdraws two labels); a label pressed again after a lost answer says it was saved, and which."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.test import Client
from django.urls import reverse

from labeling.api.tokens import token_replace
from labeling.models import Annotation, Item, Membership, ResolvedLabel, Role, TaskType
from labeling.selectors.annotator_work import annotation_undo_target
from labeling.services.annotations import (
    LabelingConflict,
    annotation_create,
    annotation_skip,
    annotation_undo,
)
from labeling.services.queue import item_claim_next

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def shapes(project_factory, label_class_factory, item_factory, member_of):
    """Annotator "ann" on "Shapes" (slug shapes): classes ring and square, 4 images in priority order."""
    project = project_factory(slug="shapes", holdout_fraction=0.0)
    ring = label_class_factory(project=project, name="ring", hotkey="1")
    square = label_class_factory(project=project, name="square", hotkey="2")
    items = [item_factory(project=project, priority=100 - n) for n in range(4)]
    ann = member_of(project, Role.ANNOTATOR, "ann")
    client = Client()
    client.force_login(ann)
    return {"project": project, "ring": ring, "square": square, "items": items, "ann": ann, "client": client}


def live_labels(user) -> dict[int, list[str]]:
    """item id -> class names of the user's labels that stand (not withdrawn)."""
    withdrawn = set(Annotation.objects.filter(undoes__isnull=False).values_list("undoes_id", flat=True))
    mine = Annotation.objects.filter(user=user, undoes__isnull=True, skipped=False).exclude(pk__in=withdrawn)
    return {a.item_id: sorted(c.name for c in a.classes.all()) for a in mine.prefetch_related("classes")}


def label_two(world) -> tuple[Annotation, Annotation]:
    project, ann = world["project"], world["ann"]
    a = annotation_create(item=item_claim_next(project=project, user=ann), user=ann, class_ids=[world["ring"].pk])
    b = annotation_create(item=item_claim_next(project=project, user=ann), user=ann, class_ids=[world["square"].pk])
    return a, b


def text(response) -> str:
    """The page as the user reads it (entities unescaped)."""
    return html_lib.unescape(response.content.decode())


def undo_target_on(html: str) -> str:
    """The annotation id the card's undo form names."""
    found = re.search(r'id="undo-form".*?name="annotation" value="([^"]*)"', html, re.S)
    assert found, "the card has no undo form naming an annotation"
    return found.group(1)


# --- the service ---


def test_an_undo_naming_a_label_withdrawn_already_changes_nothing(shapes):
    a, b = label_two(shapes)
    project, ann = shapes["project"], shapes["ann"]
    undo = annotation_undo(user=ann, project=project, annotation_id=b.pk)
    assert undo.undoes_id == b.pk
    count = Annotation.objects.count()

    # The same undo again (its answer was lost): refused, and the label before it stands
    with pytest.raises(LabelingConflict) as refused:
        annotation_undo(user=ann, project=project, annotation_id=b.pk)

    assert str(refused.value) == (
        f"Already undone: your label “square” of image #{b.item_id} was withdrawn. Nothing changed."
    )
    assert Annotation.objects.count() == count
    assert live_labels(ann) == {a.item_id: ["ring"]}
    assert ResolvedLabel.objects.filter(item_id=a.item_id).exists()


def test_an_undo_naming_a_label_that_is_no_longer_the_last_changes_nothing(shapes):
    a, b = label_two(shapes)
    project, ann = shapes["project"], shapes["ann"]

    with pytest.raises(LabelingConflict, match=f"out of date.*image #{b.item_id}"):
        annotation_undo(user=ann, project=project, annotation_id=a.pk)

    assert not Annotation.objects.filter(undoes__isnull=False).exists()
    assert live_labels(ann) == {a.item_id: ["ring"], b.item_id: ["square"]}


@pytest.mark.parametrize("named", [0, -3, 2**70, "another user's"])
def test_an_undo_naming_no_label_of_the_users_changes_nothing(shapes, member_of, named):
    project, ann = shapes["project"], shapes["ann"]
    if named == "another user's":
        bob = member_of(project, Role.ANNOTATOR, "bob")
        named = annotation_create(item=shapes["items"][3], user=bob, class_ids=[shapes["ring"].pk]).pk
    # 0 is what a card with nothing to undo sends; any other id is no label or skip of the user's here
    refusal = (LabelingConflict, "Nothing to undo") if named == 0 else (Annotation.DoesNotExist, "of yours")
    with pytest.raises(refusal[0], match=refusal[1]):
        annotation_undo(user=ann, project=project, annotation_id=named)
    assert not Annotation.objects.filter(undoes__isnull=False).exists()


def test_an_undo_naming_another_projects_label_is_a_404_and_changes_nothing(
    shapes, project_factory, label_class_factory, item_factory
):
    # Given an annotator with a label to undo here, and a label of theirs in another project
    project, ann, page = shapes["project"], shapes["ann"], shapes["client"]
    label_two(shapes)
    other = project_factory(name="Other", slug="other")
    Membership.objects.create(user=ann, project=other, role=Role.ANNOTATOR)
    cls = label_class_factory(project=other, name="leaf", hotkey="1")
    elsewhere = annotation_create(item=item_factory(project=other), user=ann, class_ids=[cls.pk])
    api = Client(HTTP_AUTHORIZATION=f"Token {token_replace(user=ann).key}")

    # When the API and the page are asked to undo that one here, or an id that does not exist
    answers = [
        api.post(
            f"/api/projects/{project.slug}/undo/", {"annotation_id": elsewhere.pk}, content_type="application/json"
        ),
        api.post(f"/api/projects/{project.slug}/undo/", {"annotation_id": 10**9}, content_type="application/json"),
        page.post(reverse("labeling:label_undo", args=[project.slug]), {"annotation": str(elsewhere.pk)}),
    ]

    # Then each is a 404 naming the id, and nothing is withdrawn in either project
    assert [r.status_code for r in answers] == [404, 404, 404]
    assert answers[0].json()["detail"] == f"No label or skip #{elsewhere.pk} of yours in this project."
    assert not Annotation.objects.filter(undoes__isnull=False).exists()


def test_without_a_name_undo_withdraws_the_last_one_and_the_target_walks_back(shapes):
    a, b = label_two(shapes)
    project, ann = shapes["project"], shapes["ann"]
    skip = annotation_skip(item=item_claim_next(project=project, user=ann), user=ann)
    assert annotation_undo_target(user=ann, project=project) == skip.pk

    assert annotation_undo(user=ann, project=project).undoes_id == skip.pk
    assert annotation_undo_target(user=ann, project=project) == b.pk
    assert annotation_undo(user=ann, project=project, annotation_id=b.pk).undoes_id == b.pk
    assert annotation_undo_target(user=ann, project=project) == a.pk


@pytest.mark.parametrize("task_type", [TaskType.SINGLE, TaskType.MULTI])
def test_a_second_label_of_an_image_by_the_same_user_says_it_was_saved_and_which(
    project_factory, label_class_factory, item_factory, member_of, task_type
):
    project = project_factory(task_type=task_type, holdout_fraction=0.0)
    ring = label_class_factory(project=project, name="ring")
    square = label_class_factory(project=project, name="square")
    item = item_factory(project=project)
    ann = member_of(project, Role.ANNOTATOR, "ann")
    given = [ring.pk, square.pk] if task_type == TaskType.MULTI else [ring.pk]
    annotation_create(item=item, user=ann, class_ids=given)

    with pytest.raises(LabelingConflict) as refused:
        annotation_create(item=item, user=ann, class_ids=[square.pk])

    names = "ring + square" if task_type == TaskType.MULTI else "ring"
    assert (
        str(refused.value)
        == f"You have already labeled image #{item.pk}: your label “{names}” is saved. Nothing changed."
    )
    assert Annotation.objects.count() == 1


# --- the labeling page ---


def test_each_card_names_the_label_its_undo_withdraws(shapes):
    client, first = shapes["client"], shapes["items"][0]
    page = client.get(reverse("labeling:label", args=["shapes"])).content.decode()
    assert undo_target_on(page) == ""  # nothing to undo yet

    answer = client.post(
        reverse("labeling:label_submit", args=["shapes", first.pk]), {"class_ids": shapes["ring"].pk}, **HTMX
    )

    saved = Annotation.objects.get(item=first)
    assert undo_target_on(answer.content.decode()) == str(saved.pk)
    assert undo_target_on(client.get(reverse("labeling:label", args=["shapes"])).content.decode()) == str(saved.pk)


def test_a_z_repeated_after_a_lost_answer_withdraws_one_label_not_two(shapes):
    # Given ann labeled two images on the page; the card she sees names the second label for undo
    client, (first, second, *_) = shapes["client"], shapes["items"]
    client.get(reverse("labeling:label", args=["shapes"]))
    client.post(reverse("labeling:label_submit", args=["shapes", first.pk]), {"class_ids": shapes["ring"].pk}, **HTMX)
    card = client.post(
        reverse("labeling:label_submit", args=["shapes", second.pk]), {"class_ids": shapes["square"].pk}, **HTMX
    ).content.decode()
    named = undo_target_on(card)

    # When she presses z, the answer is lost, and she presses z again from the same card
    undo = reverse("labeling:label_undo", args=["shapes"])
    assert client.post(undo, {"annotation": named}, **HTMX).status_code == 200
    again = client.post(undo, {"annotation": named}, **HTMX)

    # Then the second press is refused with what happened, the first label stands, and the card's undo names it
    html = text(again)
    assert again.status_code == 409
    assert f"Already undone: your label “square” of image #{second.pk} was withdrawn. Nothing changed." in html
    assert live_labels(shapes["ann"]) == {first.pk: ["ring"]}
    assert undo_target_on(html) == str(Annotation.objects.get(item=first).pk)
    # and the image whose label was withdrawn comes back to her
    shown = [int(re.search(r'data-item="(\d+)"', html).group(1))]
    if shown[0] != second.pk:
        answer = client.post(
            reverse("labeling:label_submit", args=["shapes", shown[0]]), {"class_ids": shapes["ring"].pk}, **HTMX
        )
        shown.append(int(re.search(r'data-item="(\d+)"', text(answer)).group(1)))
    assert shown[-1] == second.pk


def test_a_z_from_a_card_with_nothing_to_undo_never_withdraws_a_label_made_elsewhere(shapes):
    client, first = shapes["client"], shapes["items"][0]
    page = client.get(reverse("labeling:label", args=["shapes"])).content.decode()
    assert undo_target_on(page) == ""
    annotation_create(item=first, user=shapes["ann"], class_ids=[shapes["ring"].pk])  # in another tab

    answer = client.post(reverse("labeling:label_undo", args=["shapes"]), {"annotation": ""}, **HTMX)

    assert answer.status_code == 409
    assert "Not undone: this page's undo was out of date" in text(answer)
    assert live_labels(shapes["ann"]) == {first.pk: ["ring"]}


def test_a_label_pressed_again_after_a_lost_answer_says_it_was_saved_and_moves_on(shapes):
    client, (first, second, *_) = shapes["client"], shapes["items"]
    client.get(reverse("labeling:label", args=["shapes"]))
    submit = reverse("labeling:label_submit", args=["shapes", first.pk])
    client.post(submit, {"class_ids": shapes["ring"].pk}, **HTMX)  # saved; the answer never reached the page

    again = client.post(submit, {"class_ids": shapes["square"].pk}, **HTMX)

    html = text(again)
    assert again.status_code == 409
    assert f"You have already labeled image #{first.pk}: your label “ring” is saved. Nothing changed." in html
    assert f'data-item="{second.pk}"' in html
    assert live_labels(shapes["ann"]) == {first.pk: ["ring"]}


# --- the API ---


def test_the_api_undo_takes_an_optional_annotation_id(shapes):
    api = Client(HTTP_AUTHORIZATION=f"Token {token_replace(user=shapes['ann']).key}")
    a, b = label_two(shapes)
    url = "/api/projects/shapes/undo/"

    done = api.post(url, {"annotation_id": b.pk}, content_type="application/json")
    retried = api.post(url, {"annotation_id": b.pk}, content_type="application/json")
    bad = api.post(url, {"annotation_id": "b"}, content_type="application/json")

    assert done.status_code == 200
    assert done.json()["undone_annotation_id"] == b.pk
    assert retried.status_code == 409
    assert "Already undone" in retried.json()["detail"]
    assert bad.status_code == 400
    assert live_labels(shapes["ann"]) == {a.item_id: ["ring"]}
    # Without an id, the last one, as before
    assert api.post(url).json()["undone_annotation_id"] == a.pk
    assert Item.objects.get(pk=a.item_id).lease_user_id == shapes["ann"].pk

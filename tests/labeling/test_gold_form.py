"""The review card's gold form: fetched when a manager opens it, not sent with every card."""

import re

import pytest
from django.urls import reverse

from labeling.models import ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from labeling.services.reviews import item_gold_set, review_task_open

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(review_sample_rate=1.0)
    classes = [label_class_factory(project=project, name=f"class {k:03d}") for k in range(300)]
    ann = member_of(project, Role.ANNOTATOR, "ann")
    boss = member_of(project, Role.MANAGER, "boss")
    rev = member_of(project, Role.REVIEWER, "rev")
    items = [item_factory(project=project) for _ in range(2)]
    for item in items:
        annotation_create(item=item, user=ann, class_ids=[classes[0].pk])
    return {"project": project, "classes": classes, "boss": boss, "rev": rev, "items": items}


def test_a_managers_review_card_carries_no_class_list_for_the_gold_form(client, world):
    # Given a manager reviewing in a 300-class project, with the page's correction list already on screen
    project = world["project"]
    client.force_login(world["boss"])
    first = client.get(reverse("labeling:review", args=[project.slug])).content.decode()
    key = re.search(r'id="review-class-list" data-key="([0-9a-f]+)"', first)[1]

    # When the next card comes (what every verdict's response carries)
    card = client.get(
        reverse("labeling:review", args=[project.slug]), HTTP_HX_REQUEST="true", HTTP_X_CLASS_LIST=key
    ).content.decode()

    # Then it names no class at all: the gold form is fetched only when opened
    assert "Mark as gold item" in card
    assert "class 299" not in card
    assert 'aria-label="Gold classes"' not in card
    assert len(card) < 20_000, len(card)


def test_the_opened_gold_form_lists_every_class_with_the_gold_answer_chosen_and_returns_to_the_card(client, world):
    project, item, classes = world["project"], world["items"][0], world["classes"]
    item_gold_set(item=item, class_ids=[classes[7].pk])
    task = review_task_open(project=project, item=item, reason=ReviewTaskReason.SAMPLE)
    client.force_login(world["boss"])

    html = client.get(
        reverse("labeling:item_gold", args=[project.slug, item.pk]), {"task": task.pk}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert html.count("<option") == 300
    assert re.search(rf'<option value="{classes[7].pk}" selected>class 007</option>', html)
    assert "Stop using as gold" in html
    assert f'name="next" value="/p/{project.slug}/review/?task={task.pk}"' in html


def test_the_gold_form_is_for_managers_of_this_project_only(client, world, project_factory, member_of):
    project, item = world["project"], world["items"][0]
    url = reverse("labeling:item_gold", args=[project.slug, item.pk])
    client.force_login(world["rev"])
    assert client.get(url).status_code == 403
    other = project_factory()
    client.force_login(member_of(other, Role.MANAGER, "stranger"))
    assert client.get(url).status_code == 404
    # ... nor under another project's address
    assert client.get(reverse("labeling:item_gold", args=[other.slug, item.pk])).status_code == 404
    # A hostile task id still gives the form, returning to the plain review page
    client.force_login(world["boss"])
    html = client.get(url, {"task": "1 OR 1=1"}).content.decode()
    assert f'name="next" value="/p/{project.slug}/review/"' in html

"""The review card's "Mark as gold item" starts at the item's resolved label, or at an empty choice that must be
picked: one click on "Save gold answer" no longer saves the first class as the answer (tester h56 P12)."""

import re

import pytest
from django.urls import reverse

from labeling.models import Item, ResolvedLabel, Role
from labeling.services.annotations import annotation_create
from tests.factories import page_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def shapes(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(annotations_per_item=1)
    circle, star = (label_class_factory(project=project, name=name) for name in ("circle", "star"))
    ann = member_of(project, Role.ANNOTATOR, "ann")
    manager = member_of(project, Role.MANAGER, "manager")
    labeled, unlabeled = item_factory(project=project), item_factory(project=project)
    annotation_create(item=labeled, user=ann, class_ids=[star.pk])
    return {"project": project, "circle": circle, "star": star, "manager": manager, "labeled": labeled,
            "unlabeled": unlabeled}  # fmt: skip


def _gold_form(client, project, item) -> str:
    response = client.get(reverse("labeling:item_gold", args=[project.slug, item.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def _selected(html: str) -> list[str]:
    return re.findall(r"<option value=\"[^\"]*\" selected>([^<]*)</option>", html)


def test_the_gold_form_starts_at_the_items_resolved_label_and_one_click_saves_it(shapes):
    project, item, star = shapes["project"], shapes["labeled"], shapes["star"]
    assert list(ResolvedLabel.objects.get(item=item).classes.values_list("name", flat=True)) == ["star"]
    client = page_client(shapes["manager"])

    html = _gold_form(client, project, item)
    assert _selected(html) == ["star"]
    assert "Choose the gold answer" not in html

    # The form as it opened, sent as is: the gold answer is the resolved label, not the first class
    client.post(reverse("labeling:item_gold", args=[project.slug, item.pk]), {"action": "set", "class_ids": star.pk})
    item.refresh_from_db()
    assert item.is_gold
    assert list(item.gold_classes.values_list("name", flat=True)) == ["star"]


def test_with_no_resolved_label_the_choice_is_empty_and_sending_it_empty_is_refused(shapes):
    project, item = shapes["project"], shapes["unlabeled"]
    client = page_client(shapes["manager"])

    html = _gold_form(client, project, item)
    assert _selected(html) == ["Choose the gold answer"]
    assert re.search(r"<select name=\"class_ids\"\s+required", html)

    url = reverse("labeling:item_gold", args=[project.slug, item.pk])
    response = client.post(url, {"action": "set", "class_ids": "", "next": f"/p/{project.slug}/review/"}, follow=True)
    page = response.content.decode()
    assert f"Select at least one class as the gold answer: item #{item.pk} was not changed." in page
    assert "is now a gold item" not in page
    assert not Item.objects.get(pk=item.pk).is_gold

    # Sent with no class at all (a script, a multi-label select with nothing chosen): refused the same way
    response = client.post(url, {"action": "set", "next": f"/p/{project.slug}/review/"}, follow=True)
    assert "Select at least one class as the gold answer" in response.content.decode()
    assert not Item.objects.get(pk=item.pk).is_gold

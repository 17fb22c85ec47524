"""The card's class buttons are rendered once per taxonomy: every card still shows the project's classes as they
are now, and the model's suggestion chosen."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from labeling.models import Role, TaskType
from labeling.selectors.keys import classes_with_level_keys
from labeling.selectors.queue import label_classes_for_labeling
from labeling.services.projects import label_class_archive, label_class_create, label_classes_from_paths
from labeling.views.class_list import class_list_html

pytestmark = pytest.mark.django_db


def buttons(html: str) -> dict[str, str]:
    """data-path -> the button's class attribute, for every class button of a card."""
    return {m[2]: m[1] for m in re.finditer(r'class="(class-btn[^"]*)" data-id="\d+"[^>]*data-path="([^"]*)"', html)}


def test_every_card_shows_the_taxonomy_as_it_is_now(project, item_factory, member_of):
    label_classes_from_paths(project=project, paths=["animals/cat", "animals/dog", "car"])
    for _ in range(3):
        item_factory(project=project)
    client = Client()
    client.force_login(member_of(project, Role.ANNOTATOR))
    card = client.get(f"/p/{project.slug}/label/", HTTP_HX_REQUEST="true").content.decode()
    assert set(buttons(card)) == {"animals", "animals / cat", "animals / dog", "car"}

    # A class added, then one archived, by a manager while annotators label: the next card has them.
    label_class_create(project=project, name="bird")
    card = client.get(f"/p/{project.slug}/label/", HTTP_HX_REQUEST="true").content.decode()
    assert "bird" in buttons(card)
    car = project.classes.get(name="car")
    label_class_archive(project=project, class_id=car.pk)
    card = client.get(f"/p/{project.slug}/label/", HTTP_HX_REQUEST="true").content.decode()
    assert set(buttons(card)) == {"animals", "animals / cat", "animals / dog", "bird"}


@pytest.mark.parametrize("task_type", [TaskType.SINGLE, TaskType.MULTI])
def test_only_the_suggested_class_is_chosen_and_the_next_card_starts_clean(project_factory, task_type):
    project = project_factory(task_type=task_type)
    label_classes_from_paths(project=project, paths=["cat", "dog", "bird"])
    classes = classes_with_level_keys(label_classes_for_labeling(project=project))
    dog = next(c for c in classes if c.name == "dog")

    chosen = class_list_html(project=project, classes=classes, preselected=[dog.id])
    assert buttons(chosen) == {"cat": "class-btn", "dog": "class-btn on", "bird": "class-btn"}
    ticked = re.findall(r'value="(\d+)" checked', chosen)
    assert ticked == ([str(dog.id)] if task_type == TaskType.MULTI else [])

    plain = class_list_html(project=project, classes=classes, preselected=[])
    assert set(buttons(plain).values()) == {"class-btn"}
    assert "checked" not in plain


def list_key(html: str) -> str:
    return re.search(r'id="class-list" data-key="([0-9a-f]+)"', html)[1]


def test_a_page_that_shows_the_list_gets_cards_without_it_until_the_taxonomy_changes(project, item_factory, member_of):
    """318 KB of buttons with every label at 1,080 classes: the page keeps the list it has, the card does not
    resend it, and a class added meanwhile sends the new list with the next card."""
    label_classes_from_paths(project=project, paths=[f"group {g}/class {c}" for g in range(30) for c in range(30)])
    for _ in range(3):
        item_factory(project=project)
    client = Client()
    client.force_login(member_of(project, Role.ANNOTATOR))
    url = f"/p/{project.slug}/label/"
    full = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert len(buttons(full)) == 930
    key = list_key(full)

    kept = client.get(url, HTTP_HX_REQUEST="true", HTTP_X_CLASS_LIST=key).content.decode()
    assert buttons(kept) == {}
    assert f'<div class="classes" id="class-list" data-key="{key}" data-keep="1"></div>' in kept
    assert len(kept) < len(full) / 20

    # Another process renders the same list under the same key (a digest, not a per-process hash).
    from labeling.views import class_list

    class_list._rendered.clear()
    assert list_key(client.get(url, HTTP_HX_REQUEST="true").content.decode()) == key

    label_class_create(project=project, name="bird")
    changed = client.get(url, HTTP_HX_REQUEST="true", HTTP_X_CLASS_LIST=key).content.decode()
    assert "bird" in buttons(changed)
    assert len(buttons(changed)) == 931
    assert list_key(changed) != key
    assert "data-keep" not in changed

    for stale in ("", "0" * 20, "<script>"):
        page = client.get(url, HTTP_HX_REQUEST="true", HTTP_X_CLASS_LIST=stale).content.decode()
        assert len(buttons(page)) == 931
    # A plain (non-htmx) page always has the whole list, whatever header comes with it.
    assert len(buttons(client.get(url, HTTP_X_CLASS_LIST=list_key(changed)).content.decode())) == 931


def test_review_cards_keep_the_pages_correction_list_and_mark_the_given_class(project_factory, item_factory, member_of):
    from labeling.services.annotations import annotation_create

    project = project_factory(review_sample_rate=1.0)
    label_classes_from_paths(project=project, paths=[f"kind {n}" for n in range(400)])
    kinds = {c.name: c for c in project.classes.all()}
    ann = member_of(project, Role.ANNOTATOR)
    for name in ("kind 7", "kind 8"):
        annotation_create(item=item_factory(project=project), user=ann, class_ids=[kinds[name].pk])
    client = Client()
    client.force_login(member_of(project, Role.REVIEWER))
    url = f"/p/{project.slug}/review/"
    full = client.get(url).content.decode()
    given = {path: cls for path, cls in buttons(full).items() if "given" in cls}
    assert len(buttons(full)) == 400
    assert list(given) in (["kind 7"], ["kind 8"])
    key = re.search(r'id="review-class-list" data-key="([0-9a-f]+)"', full)[1]

    kept = client.get(url, HTTP_HX_REQUEST="true", HTTP_X_CLASS_LIST=key).content.decode()
    assert buttons(kept) == {}
    assert 'id="review-class-list" data-key="' + key + '" data-keep="1"' in kept
    # The task's given classes still travel with the card, for the page to mark on its kept list.
    assert re.search(r'data-given="(\d+)"', kept)[1] in {str(kinds["kind 7"].pk), str(kinds["kind 8"].pk)}
    assert len(buttons(client.get(url, HTTP_HX_REQUEST="true", HTTP_X_CLASS_LIST="stale").content.decode())) == 400

"""The class buttons come once per page, not with every card (labeling/views/class_list.py), in a real browser.

An annotator labeling a 300-class project by the model's suggestion (Enter) gets each next card in a few KB,
sees the suggestion of the card on screen marked (never the last card's), and sees a class a manager adds
meanwhile on the next card; in a multi-label project the last card's ticks do not carry over.
"""

from __future__ import annotations

import pytest

from labeling.models import Annotation, LabelClass, Review, ReviewTask, Role, TaskType
from labeling.services.annotations import annotation_create
from labeling.services.projects import label_class_create, label_classes_from_paths
from training.models import ModelVersion, Prediction

from .conftest import CARD, next_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

CLASSES = 300


def suggested_project(project_factory, item_factory, *, task_type, items: int = 5):
    """A project of CLASSES classes whose active model suggests a different class for each item (preselected)."""
    project = project_factory(
        name="Many", slug="many", holdout_fraction=0.0, task_type=task_type, preselect_suggestion=True
    )
    label_classes_from_paths(project=project, paths=[f"species {n:03d}" for n in range(CLASSES)])
    classes = list(LabelClass.objects.filter(project=project).order_by("pk"))
    version = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", class_ids=[c.pk for c in classes], active=True
    )
    suggestion = {}
    for n in range(items):
        item = item_factory(project=project, priority=100 - n)
        top = classes[7 * n + 3]
        probs = [0.0] * len(classes)
        probs[classes.index(top)] = 0.8
        Prediction.objects.create(
            item=item, model_version=version, probabilities=probs, predicted_class=top, confidence=0.8, uncertainty=0.2
        )
        suggestion[str(item.pk)] = str(top.pk)
    return project, suggestion


def card_sizes(page, path: str = "/label/") -> list[int]:
    """Body sizes of the card responses (label, skip, undo posts; review verdicts) the page receives, in order."""
    sizes: list[int] = []

    def seen(response) -> None:
        if response.request.method == "POST" and path in response.url:
            sizes.append(len(response.body()))

    page.on("response", seen)
    return sizes


def chosen(page) -> list[str]:
    return page.eval_on_selector_all("#label-form .class-btn.on", "els => els.map(e => e.dataset.id)")


def test_labeling_by_suggestion_gets_small_cards_marks_each_cards_own_suggestion_and_shows_new_classes(
    page, login, project_factory, item_factory, member_of
):
    project, suggestion = suggested_project(project_factory, item_factory, task_type=TaskType.SINGLE)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    sizes = card_sizes(page)
    page.goto("/p/many/label/")
    item = page.wait_for_function(CARD).json_value()
    assert page.locator("#label-form .class-btn").count() == CLASSES
    first_page = len(page.content())

    labeled = []
    for step in range(3):
        assert chosen(page) == [suggestion[item]], f"card {step}: the suggestion marked is not this image's"
        page.keyboard.press("Enter")
        labeled.append(item)
        item = next_card(page, item)
        assert page.locator("#label-form .class-btn").count() == CLASSES
    assert len(sizes) == 3
    assert max(sizes) < first_page / 10, (sizes, first_page)
    got = dict(Annotation.objects.filter(item_id__in=labeled).values_list("item_id", "classes__pk"))
    assert {str(k): str(v) for k, v in got.items()} == {i: suggestion[i] for i in labeled}

    # A manager adds a class while ann labels: the next card brings the new list (and it takes a label).
    label_class_create(project=project, name="species new")
    page.keyboard.press("Enter")
    item = next_card(page, item)
    assert page.locator("#label-form .class-btn").count() == CLASSES + 1
    assert page.locator("#label-form .class-btn", has_text="species new").count() == 1
    assert sizes[-1] > first_page / 10  # the whole list came with this card
    assert chosen(page) == [suggestion[item]]
    page.keyboard.press("/")
    page.fill("#class-search", "species new")
    page.keyboard.press("Enter")
    new = LabelClass.objects.get(project=project, name="species new")
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=item)
    assert list(Annotation.objects.filter(item_id=int(item)).values_list("classes__pk", flat=True)) == [new.pk]


def test_multi_label_ticks_do_not_carry_to_the_next_card(page, login, project_factory, item_factory, member_of):
    project, suggestion = suggested_project(project_factory, item_factory, task_type=TaskType.MULTI, items=3)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/many/label/")
    item = page.wait_for_function(CARD).json_value()
    extra = page.locator("#label-form .class-btn").nth(0)
    extra.click()
    page.wait_for_function("() => document.querySelectorAll('#label-form .class-btn.on').length === 2")
    assert sorted(chosen(page)) == sorted([suggestion[item], extra.get_attribute("data-id")])
    page.keyboard.press("Enter")
    first = item
    item = next_card(page, item)

    assert chosen(page) == [suggestion[item]]
    ticked = page.eval_on_selector_all("#label-form input[type=checkbox]:checked", "els => els.map(e => e.value)")
    assert ticked == [suggestion[item]]
    got = sorted(str(c) for c in Annotation.objects.filter(item_id=int(first)).values_list("classes__pk", flat=True))
    assert got == sorted([suggestion[first], extra.get_attribute("data-id")])


def test_a_reviewer_gets_small_cards_sees_each_tasks_given_class_and_corrects_from_the_kept_list(
    page, login, project_factory, item_factory, member_of
):
    project = project_factory(name="Audit", slug="audit", holdout_fraction=0.0, review_sample_rate=1.0)
    label_classes_from_paths(project=project, paths=[f"species {n:03d}" for n in range(CLASSES)])
    classes = list(LabelClass.objects.filter(project=project).order_by("pk"))
    ann = member_of(project, Role.ANNOTATOR, "ann")
    member_of(project, Role.REVIEWER, "rita")
    given = {}
    for n in range(4):
        item = item_factory(project=project)
        annotation_create(item=item, user=ann, class_ids=[classes[11 * n + 5].pk])
        given[item.pk] = classes[11 * n + 5]
    login("rita")
    sizes = card_sizes(page, "/review/")
    page.goto("/p/audit/review/")
    first_page = len(page.content())

    def wait_next(old: str) -> str:
        page.wait_for_function(
            "old => { const c = document.getElementById('review-card');"
            " return c && c.dataset.task !== old && c.dataset.ready === '1'; }",
            arg=old,
        )
        return page.get_attribute("#review-card", "data-task")

    def given_on_page() -> list[str]:
        return page.eval_on_selector_all("#correct-classes .class-btn.given", "els => els.map(e => e.dataset.path)")

    def task_item() -> int:
        return ReviewTask.objects.get(pk=int(page.get_attribute("#review-card", "data-task"))).item_id

    task = wait_next("")
    for _ in range(2):
        assert given_on_page() == [given[task_item()].path]
        page.keyboard.press("a")
        task = wait_next(task)
    assert page.locator("#correct-classes .class-btn").count() == CLASSES
    assert given_on_page() == [given[task_item()].path]
    assert len(sizes) == 2
    assert max(sizes) < first_page / 5, (sizes, first_page)

    # A correction by search on the kept list is saved with the class picked.
    item_id = task_item()
    page.keyboard.press("c")
    page.keyboard.press("/")
    page.fill("#correct-search", "species 299")
    page.keyboard.press("Enter")
    wait_next(task)
    review = Review.objects.get(annotation__item_id=item_id)
    assert [c.name for c in review.corrected_classes.all()] == ["species 299"]


def test_a_multi_label_card_ticks_every_class_the_model_predicts_and_enter_accepts_them(
    page, login, project_factory, item_factory, member_of
):
    # Given a multi-label project that preselects the model's suggestion, and a model that gives the first card's
    # image two classes above 0.5 and a third below
    project, suggestion = suggested_project(project_factory, item_factory, task_type=TaskType.MULTI, items=2)
    classes = list(LabelClass.objects.filter(project=project).order_by("pk"))
    first = Prediction.objects.filter(item__project=project).order_by("-item__priority").first()
    top, second, third = (classes.index(c) for c in (first.predicted_class, classes[100], classes[200]))
    probs = [0.0] * len(classes)
    probs[top], probs[second], probs[third] = 0.9, 0.6, 0.4
    Prediction.objects.filter(pk=first.pk).update(probabilities=probs)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/many/label/")
    item = page.wait_for_function(CARD).json_value()
    assert item == str(first.item_id)

    # Then both predicted classes are ticked, and the one at 0.4 is suggested but not ticked
    ticked = page.eval_on_selector_all("#label-form input[type=checkbox]:checked", "els => els.map(e => e.value)")
    assert sorted(ticked) == sorted([str(classes[top].pk), str(classes[100].pk)])
    assert page.locator(".suggestion.chosen").count() == 2
    assert page.locator(".suggestion").count() == 3

    # When the annotator agrees and presses Enter, the image is labeled with both
    page.wait_for_timeout(200)  # a person looks first: keys within 100 ms of a new card are not applied
    page.keyboard.press("Enter")
    nxt = next_card(page, item)
    got = sorted(Annotation.objects.filter(item_id=int(item)).values_list("classes__pk", flat=True))
    assert got == sorted([classes[top].pk, classes[100].pk])
    # ... and the next card starts from its own prediction, not the last card's ticks
    assert chosen(page) == [suggestion[nxt]]

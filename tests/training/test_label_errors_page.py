"""The suspected-label-errors page on the product path: images imported and labeled through the services, a model
trained by the training service, the search started from the page's button, the page read as a reviewer reads
it. The digits are scikit-learn's 1,797, at the demo's real size. The
browser checks at that size (all labels correct, 5 % wrong: what is listed and the headline's estimate) run against
`make demo`'s processes in tests/e2e/test_first_hour.py."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from labeling.models import Item, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from labeling.services.imports import item_create_from_bytes
from tests.training.loop_fixtures import digit_png
from training.models import LabelErrorSearch

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr data-item="(\d+)" data-given="(\d*)" data-model="(\d*)"')


def page_rows(html: str) -> list[tuple[int, int | None, int | None]]:
    """(item id, given class id, model class id) of every row of the suspects table."""
    return [(int(i), int(g) if g else None, int(m) if m else None) for i, g, m in ROW.findall(html)]


def search_from_page(client, project, django_capture_on_commit_callbacks) -> None:
    """Press "Search for label errors now" (eager Celery: the task runs when the request's transaction commits)."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("training:label_errors_find", args=[project.slug]))
    assert response.status_code == 302


def colour_png(rgb: tuple[int, int, int], seed: int) -> bytes:
    """A 32 px image of one colour with a little noise (unique bytes per seed)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(rgb)[None, None, :] + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def red_and_blue_labeled(project_factory, member_of, per_class: int = 22):
    """A 32 px project with red and blue, `per_class` colour images of each labeled by "ann" (22: enough for the
    label-error search to judge them), and its manager "boss". Returns (project, manager)."""
    project = project_factory(image_size=32)
    manager = member_of(project, Role.MANAGER, "boss")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    classes = [project.classes.create(name=n, order=k) for k, n in enumerate(["red", "blue"])]
    for k, rgb in enumerate([(220, 30, 30), (30, 30, 220)]):
        for j in range(per_class):
            item = item_create_from_bytes(project=project, name=f"{k}-{j}.png", data=colour_png(rgb, 100 * k + j))
            annotation_create(item=item, user=annotator, class_ids=[classes[k].pk])
    return project, manager


def test_too_few_labels_per_class_says_so_and_flags_nothing(
    client, project_factory, member_of, django_capture_on_commit_callbacks
):
    # Given three classes with 12, 12 and 3 labels (below 20 per class) and a stale suspect from an earlier search
    project = project_factory(image_size=32)
    manager = member_of(project, Role.MANAGER, "boss")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    classes = [project.classes.create(name=n, order=k) for k, n in enumerate(["red", "blue", "green"])]
    colours = [(220, 30, 30), (30, 30, 220), (30, 200, 30)]
    items = []
    for k, count in enumerate([12, 12, 3]):
        for j in range(count):
            item = item_create_from_bytes(
                project=project, name=f"{k}-{j}.png", data=colour_png(colours[k], 100 * k + j)
            )
            annotation_create(item=item, user=annotator, class_ids=[classes[k].pk])
            items.append(item)
    ReviewTask.objects.create(project=project, item=items[0], reason=ReviewTaskReason.LABEL_ERROR, score=0.9)
    client.force_login(manager)

    # When the manager searches from the page
    search_from_page(client, project, django_capture_on_commit_callbacks)
    html = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()

    # Then the page says there are too few labels, names the classes left out, and lists no suspect
    assert "Too few labels to judge" in html
    assert "at least 20 labels in each of two or more classes" in html
    assert 'data-status="too_few"' in html
    assert "<bdi>red</bdi> (12)" in html
    assert "<bdi>green</bdi> (3)" in html
    assert page_rows(html) == []
    assert not ReviewTask.objects.filter(reason=ReviewTaskReason.LABEL_ERROR, done=False).exists()
    assert LabelErrorSearch.objects.get(project=project).status == "too_few"


@pytest.mark.parametrize("n_classes", [4, 2])
def test_labels_a_model_cannot_learn_are_not_judged(
    client, project_factory, member_of, django_capture_on_commit_callbacks, n_classes
):
    # Given classes x 20 labels given at random to images of noise: no model can beat chance by much
    # (with two classes, chance is already 50 %: "agreeing" with half the labels judges nothing)
    project = project_factory(image_size=32)
    manager = member_of(project, Role.MANAGER, "boss")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    classes = [project.classes.create(name=f"c{k}", order=k) for k in range(n_classes)]
    rng = np.random.default_rng(3)
    for j in range(20 * n_classes):
        grey = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(grey, "RGB").save(buffer, "PNG")
        item = item_create_from_bytes(project=project, name=f"{j}.png", data=buffer.getvalue())
        annotation_create(item=item, user=annotator, class_ids=[classes[j % n_classes].pk])
    client.force_login(manager)

    # When the manager searches from the page
    search_from_page(client, project, django_capture_on_commit_callbacks)
    html = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()

    # Then the page says the model is too weak to judge, instead of flagging its own mistakes
    assert "The model is too weak to judge labels yet" in html
    assert 'data-status="weak"' in html
    assert page_rows(html) == []
    assert not ReviewTask.objects.filter(reason=ReviewTaskReason.LABEL_ERROR, done=False).exists()


def test_rows_are_disagreements_judged_out_of_sample_and_reviews_are_counted(
    client, project_factory, member_of, django_capture_on_commit_callbacks
):
    # Given 30 zeros and 30 ones from the digits, three of the zeros labeled 1
    from sklearn.datasets import load_digits

    digits = load_digits()
    project = project_factory(image_size=64)
    manager = member_of(project, Role.MANAGER, "boss")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    zero, one = (project.classes.create(name=n, order=k) for k, n in enumerate(["0", "1"]))
    wrong = set()
    picked = [i for d in (0, 1) for i in np.nonzero(digits.target == d)[0][:30]]
    for n, i in enumerate(picked):
        item = item_create_from_bytes(project=project, name=f"{i}.png", data=digit_png(digits.data[i]))
        given = one if digits.target[i] == 1 or n < 3 else zero
        if digits.target[i] == 0 and n < 3:
            wrong.add(item.pk)
        annotation_create(item=item, user=annotator, class_ids=[given.pk])
    client.force_login(manager)

    # When the manager searches from the page and opens it
    search_from_page(client, project, django_capture_on_commit_callbacks)
    url = reverse("labeling:review_label_errors", args=[project.slug])
    html = client.get(url).content.decode()
    rows = page_rows(html)

    # Then every row is a wrong label, shown with the model's other class, and the headline is an interval
    assert rows
    assert {item for item, _, _ in rows} <= wrong
    assert all(model is not None and model != given for _, given, model in rows)
    assert all(model == zero.pk for _, _, model in rows)
    text = re.sub(r"\s+", " ", html)
    assert re.search(r"About [\d.]+ % of the 60 checked labels are probably wrong", text)
    assert re.search(r"95 % interval [\d.]+\u2013[\d.]+ %", text)
    assert "No suspect has been reviewed yet." in text

    # When the manager, reviewing, corrects every listed suspect and accepts a correct label that an earlier
    # search had listed
    tasks = list(ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False))
    for task in tasks:
        response = client.post(
            reverse("labeling:review_verdict", args=[project.slug, task.pk]),
            {"verdict": "correct", "class_ids": [zero.pk], "reason": "label_error"},
        )
        assert response.status_code == 302
    right = Item.objects.filter(project=project).exclude(pk__in=wrong).first()
    earlier = ReviewTask.objects.create(project=project, item=right, reason=ReviewTaskReason.LABEL_ERROR, score=0.5)
    client.post(
        reverse("labeling:review_verdict", args=[project.slug, earlier.pk]), {"verdict": "accept", "reason": ""}
    )
    html = client.get(url).content.decode()

    # Then the page counts the corrected suspects as real errors and the accepted one as a false alarm
    text = re.sub(r"\s+", " ", html)
    reviewed = len(tasks) + 1
    assert f"Reviewed so far: <strong>{len(tasks)} of {reviewed}</strong> suspects were real errors" in text
    assert "1 was a false alarm" in text
    assert page_rows(html) == []


@pytest.mark.parametrize(("role", "sees"), [(Role.REVIEWER, True), (Role.MANAGER, True), (Role.ANNOTATOR, None)])
def test_whoever_may_start_a_search_sees_the_button(project_factory, member_of, role, sees):
    from django.test import Client

    project = project_factory()
    client = Client()
    client.force_login(member_of(project, role))
    response = client.get(reverse("labeling:review_label_errors", args=[project.slug]))
    if sees is None:
        assert response.status_code in (403, 404)
        return
    assert "Search for label errors now" in response.content.decode()

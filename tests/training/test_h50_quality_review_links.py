"""The confusion drill-down (training/views/quality.py, model_confusion_items) sends a reviewer to each item's
review card, where its label is accepted or corrected; others see the tiles as before. The heatmap pill over a
tile says no more than it knows in one short word (h50 review, P3)."""

import re

import pytest
from django.urls import reverse

from labeling.models import LabelSource, ResolvedLabel, ReviewTask, ReviewTaskReason, Role, Split
from tests.factories import page_client
from training.models import Explanation, ExplanationStatus, ModelVersion, Prediction

pytestmark = pytest.mark.django_db


def one_read_as_eight(project, label_class_factory, item_factory) -> tuple[ModelVersion, list, object]:
    """In `project`, two holdout items labeled "one" that v1 (active) predicts "eight" at 74 % and 61 % (the
    drill-down cell t=0, p=1): (v1, the items, the class eight)."""
    one = label_class_factory(project=project, name="one")
    eight = label_class_factory(project=project, name="eight")
    version = ModelVersion.objects.create(
        project=project, number=1, artifact_path="a", architecture="lite0", class_ids=[one.pk, eight.pk],
        metrics={"n": 2, "accuracy": 0.0, "confusion_matrix": [[0, 2], [0, 0]]}, label_count=40, active=True,
    )  # fmt: skip
    items = []
    for confidence in (0.74, 0.61):
        item = item_factory(project=project, split=Split.HOLDOUT)
        ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT).classes.set([one])
        Prediction.objects.create(
            item=item, model_version=version, probabilities=[1 - confidence, confidence], predicted_class=eight,
            confidence=confidence, uncertainty=1 - confidence,
        )  # fmt: skip
        items.append(item)
    return version, items, eight


@pytest.fixture
def cell(project_factory, label_class_factory, item_factory):
    """one_read_as_eight in a new project, with the drill-down cell's address."""
    project = project_factory()
    version, items, eight = one_read_as_eight(project, label_class_factory, item_factory)
    url = reverse("training:model_confusion_items", args=[project.slug]) + "?v=1&t=0&p=1"
    return {"project": project, "version": version, "items": items, "url": url, "eight": eight}


def test_a_reviewer_opens_the_review_card_of_a_drill_down_item(cell, member_of):
    # Given a reviewer, and the first item already waiting in the review queue (a suspected label error)
    project, items = cell["project"], cell["items"]
    suspect = ReviewTask.objects.create(project=project, item=items[0], reason=ReviewTaskReason.LABEL_ERROR)
    client = page_client(member_of(project, Role.REVIEWER, "rev"))

    # When they open the confusion cell
    html = client.get(cell["url"]).content.decode()

    # Then the suspect's tile links to its open review card, and the other tile has a button that opens one
    review = reverse("labeling:review", args=[project.slug])
    assert f'href="{review}?reason=label_error&amp;task={suspect.pk}"' in html
    assert reverse("training:confusion_item_review", args=[project.slug]) in html
    assert f'name="item" value="{items[1].pk}"' in html

    # When they press it for the second item
    answer = client.post(reverse("training:confusion_item_review", args=[project.slug]), {"v": 1, "item": items[1].pk})

    # Then a "Model contradicts" task is opened for it and the review page shows that card
    task = ReviewTask.objects.get(item=items[1], done=False)
    assert task.reason == ReviewTaskReason.MODEL
    assert answer.status_code == 302
    assert answer["Location"] == f"{review}?reason=model&task={task.pk}"
    card = client.get(answer["Location"]).content.decode()
    assert f'data-task="{task.pk}"' in card

    # And pressing it again opens the same task, not a second one
    again = client.post(reverse("training:confusion_item_review", args=[project.slug]), {"v": 1, "item": items[1].pk})
    assert again["Location"] == answer["Location"]
    assert ReviewTask.objects.filter(item=items[1]).count() == 1


def test_an_item_the_model_gets_right_opens_as_an_audit_not_a_contradiction(cell, member_of):
    # Given a holdout item labeled "eight" that v1 predicts "eight" (the diagonal cell t=1, p=1)
    project, version, eight = cell["project"], cell["version"], cell["eight"]
    item = cell["items"][1]
    item.resolved.classes.set([eight])
    client = page_client(member_of(project, Role.REVIEWER, "rev"))
    page = client.get(reverse("training:model_confusion_items", args=[project.slug]) + "?v=1&t=1&p=1").content
    assert "the model agrees with its label" in page.decode()

    # When a reviewer asks for its review card
    answer = client.post(
        reverse("training:confusion_item_review", args=[project.slug]), {"v": version.number, "item": item.pk}
    )

    # Then it is an audit sample: nothing contradicts its label, and the "Model contradicts" tab does not grow
    task = ReviewTask.objects.get(item=item, done=False)
    assert task.reason == ReviewTaskReason.SAMPLE
    assert answer["Location"].endswith(f"?reason=sample&task={task.pk}")


def test_who_may_not_review_sees_plain_tiles_and_cannot_open_a_task(cell, member_of):
    project = cell["project"]
    client = page_client(member_of(project, Role.ML_ENGINEER, "mle"))
    html = client.get(cell["url"]).content.decode()
    assert html.count('class="cell-item"') == 2
    assert "review-item" not in html
    assert reverse("training:confusion_item_review", args=[project.slug]) not in html
    answer = client.post(
        reverse("training:confusion_item_review", args=[project.slug]), {"v": 1, "item": cell["items"][0].pk}
    )
    assert answer.status_code == 403
    assert not ReviewTask.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"v": 1, "item": "x"},
        {"v": 1, "item": "²"},
        {"v": 1, "item": str(2**70)},
        {"v": "²", "item": 1},
        {"v": 9, "item": 1},
        {"v": "", "item": 1},
        {"v": 1, "item": 999999},
    ],
)
def test_a_bad_pick_is_refused_and_opens_nothing(cell, member_of, data):
    client = page_client(member_of(cell["project"], Role.REVIEWER, "rev"))
    answer = client.post(reverse("training:confusion_item_review", args=[cell["project"].slug]), data)
    assert answer.status_code == 404
    assert not ReviewTask.objects.exists()


def test_an_item_of_another_project_is_refused(cell, member_of, project_factory, item_factory):
    other = item_factory(project=project_factory(), split=Split.HOLDOUT)
    client = page_client(member_of(cell["project"], Role.REVIEWER, "rev"))
    answer = client.post(
        reverse("training:confusion_item_review", args=[cell["project"].slug]), {"v": 1, "item": other.pk}
    )
    assert answer.status_code == 404
    assert not ReviewTask.objects.exists()


@pytest.mark.parametrize(
    ("status", "word"), [(ExplanationStatus.QUEUED, "Queued"), (ExplanationStatus.RUNNING, "Computing")]
)
def test_the_heatmap_pill_over_a_small_tile_is_one_short_word(cell, member_of, status, word):
    # Given a heatmap of the drill-down's first item that waits for the worker (queued) or is being computed
    project, item = cell["project"], cell["items"][0]
    Explanation.objects.create(
        model_version=cell["version"], item=item, class_index=1, class_name="eight", status=status
    )
    client = page_client(member_of(project, Role.REVIEWER, "rev"))

    # When the tile asks for it
    url = reverse("training:explanation", args=[project.slug, item.pk, cell["eight"].pk]) + "?version=1&poll=1"
    body = client.get(url).content.decode()

    # Then the pill shows one short word (no "Computing the heatmap of ..." cut at the tile's edge), and a queued
    # one does not claim to be computing
    shown = re.search(r'class="explain-status explain-pending".*?</span>([^<]*)</span>', body, re.S)
    assert shown is not None
    assert shown.group(1) == word
    if status == ExplanationStatus.QUEUED:
        assert ">Computing<" not in body
        assert "is queued. Waits for the gpu worker (queued" in body

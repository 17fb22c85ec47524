"""Monitoring a multi-label model: the class mix counts every class a prediction gave (as the labeled side counts
every class of a label), "send to queue" by class finds predictions where the class is one of those given, and live
accuracy asks for the whole label set. Logs are written by the service's own writer."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item, Role, TaskType
from labeling.services.annotations import annotation_create
from serving.models import PredictedLabel, PredictionLog
from serving.services.prediction_log import LogRecord, prediction_logs_write
from tests.factories import page_client, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenes(project_factory, label_class_factory, item_factory, member_of):
    """A multi-label project: 3 labeled items ({cat, dog} twice, {bird} once) and 6 logged predictions, 4 giving
    {cat, dog} (top class cat) and 2 giving {bird}."""
    project = project_factory(slug="scenes", name="Scenes", task_type=TaskType.MULTI)
    classes = {n: label_class_factory(project=project, name=n) for n in ("cat", "dog", "bird")}
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for names in (("cat", "dog"), ("cat", "dog"), ("bird",)):
        item = item_factory(project=project)
        annotation_create(item=item, user=annotator, class_ids=[classes[n].pk for n in names])
    now = timezone.now()
    records = [
        LogRecord(
            uid=str(uuid.uuid4()), project_id=project.pk, created_at=now, version_number=1, top_class=labels[0],
            confidence=0.6 + k / 100, margin=0.2, embedding=None, image=png_bytes(70_000 + k), image_format="PNG",
            api_key_id=None, labels=labels,
        )
        for k, labels in enumerate([("cat", "dog")] * 4 + [("bird",)] * 2)
    ]  # fmt: skip
    assert prediction_logs_write(records=records) == 6
    return project, classes, member_of(project, Role.MANAGER, "boss")


def test_the_class_mix_counts_every_class_a_prediction_gave(scenes):
    project, _, manager = scenes
    client = page_client(manager)

    # When the manager reads the figures and the page
    data = client.get(f"/api/projects/{project.slug}/monitoring/").json()
    html = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()

    # Then "dog", never a top class but given by 4 predictions, counts 4 times, as its 2 labels count twice
    assert {c["path"]: (c["predicted"], c["labeled"]) for c in data["classes"]} == {
        "cat": (4, 2), "dog": (4, 2), "bird": (2, 1),
    }  # fmt: skip
    assert (data["total"], data["predicted_total"], data["labeled_total"]) == (6, 10, 5)
    assert {c["path"]: c["predicted_share"] for c in data["classes"]} == pytest.approx(
        {"cat": 0.4, "dog": 0.4, "bird": 0.2}
    )
    assert "Predicted (10 classes in 6 predictions)" in html
    assert 'id="class-mix-note"' in html
    assert "least sure class decision" in html.split('id="confidence"')[1]


def test_sending_one_class_picks_the_predictions_that_gave_it_and_live_accuracy_wants_the_whole_set(
    scenes, member_of, django_capture_on_commit_callbacks
):
    project, classes, manager = scenes
    client = page_client(manager)

    # When the manager sends the predictions of "dog" to the labeling queue
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 10, "top_class": "dog"}
        )
    assert response.status_code == 202, response.content

    # Then the 4 predictions that gave dog (none had it as top class) are sent, and only those
    sent = list(PredictionLog.objects.filter(project=project).exclude(queued_at=None))
    assert len(sent) == 4
    assert all(set(log.predicted_labels.values_list("path", flat=True)) == {"cat", "dog"} for log in sent)

    # When people label two of them {cat, dog} and two {cat} only
    annotator = member_of(project, Role.ANNOTATOR)
    for k, log in enumerate(sorted(sent, key=lambda r: r.pk)):
        item = Item.objects.get(project=project, sha256=log.image_sha256)
        names = ("cat", "dog") if k < 2 else ("cat",)
        annotation_create(item=item, user=annotator, class_ids=[classes[n].pk for n in names])

    # Then v1's live accuracy is 2 of 4: a prediction is right when its set is the labeled set, not when its top
    # class (cat, right on all four) is among the labels
    [live] = client.get(f"/api/projects/{project.slug}/monitoring/").json()["live_accuracy"]
    assert (live["version"], live["n"], live["correct"]) == (1, 4, 2)
    html = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()
    assert "subset accuracy" in html.split('id="live-accuracy"')[1]


def test_a_single_label_prediction_logs_no_label_set(project_factory):
    project = project_factory(slug="single")
    record = LogRecord(
        uid=str(uuid.uuid4()), project_id=project.pk, created_at=timezone.now(), version_number=1,
        top_class="cat", confidence=0.9, margin=0.5, embedding=None, image=None, image_format="PNG", api_key_id=None,
    )  # fmt: skip
    assert prediction_logs_write(records=[record]) == 1
    assert not PredictedLabel.objects.exists()

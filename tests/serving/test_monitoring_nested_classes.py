"""Monitoring a model of a nested taxonomy (round / circle / red beside angular / square / red): a trained model's
class names are display paths ("angular / square / red"), older checkpoints' stored paths ("angular/square/red"),
and the prediction log keeps them as the service answered. Live accuracy, the labeled side of the class mix and
"send to queue" by class all have to meet the labels (class ids) whichever spelling the log holds; a class typed
by a person may be spelled either way too. Logs are written by the service's own writer."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item, Job, Role, TaskType
from labeling.services.annotations import annotation_create
from serving.models import PredictionLog
from serving.services.prediction_log import LogRecord, prediction_logs_write
from tests.factories import page_client, png_bytes

pytestmark = pytest.mark.django_db

SQUARE_RED = "angular / square / red"  # as a trained model names it
SQUARE_RED_STORED = "angular/square/red"  # as an older checkpoint (and exports, imports) name it
CIRCLE_RED = "round / circle / red"
CIRCLE_BLUE = "round / circle / blue"


def taxonomy(project, label_class_factory) -> dict[str, object]:
    """round / circle / {red, blue} and angular / square / red: two leaves named "red", told apart by their path."""
    round_, angular = (
        label_class_factory(project=project, name=n, order=i) for i, n in enumerate(("round", "angular"))
    )
    circle = label_class_factory(project=project, name="circle", parent=round_, order=2)
    square = label_class_factory(project=project, name="square", parent=angular, order=3)
    return {
        CIRCLE_RED: label_class_factory(project=project, name="red", parent=circle, order=4),
        CIRCLE_BLUE: label_class_factory(project=project, name="blue", parent=circle, order=5),
        SQUARE_RED: label_class_factory(project=project, name="red", parent=square, order=6),
    }


def log_predictions(project, names: list, *, seed: int) -> list[PredictionLog]:
    """One logged prediction per entry of `names` (a class name, or a tuple of them for a multi-label model), each
    a minute older than the one before and less confident, its image kept: what the prediction service writes."""
    now = timezone.now()
    records = []
    for k, name in enumerate(names):
        labels = name if isinstance(name, tuple) else ()
        records.append(
            LogRecord(
                uid=str(uuid.uuid4()), project_id=project.pk, created_at=now - timedelta(minutes=k),
                version_number=1, top_class=labels[0] if labels else name, confidence=0.9 - k / 100, margin=0.2,
                embedding=None, image=png_bytes(seed + k), image_format="PNG", api_key_id=None, labels=labels,
            )
        )  # fmt: skip
    assert prediction_logs_write(records=records) == len(records)
    return list(PredictionLog.objects.filter(project=project, uid__in=[r.uid for r in records]))


def sent_items(project) -> dict[str, Item]:
    """The production images sent so far, as items of the project: prediction uid -> item."""
    sent = PredictionLog.objects.filter(project=project).exclude(queued_at=None)
    items = {i.sha256: i for i in Item.objects.filter(project=project, sha256__in=sent.values("image_sha256"))}
    return {str(log.uid): items[log.image_sha256] for log in sent}


@pytest.fixture
def shapes(project_factory, label_class_factory, item_factory, member_of):
    """A single-label project of the nested taxonomy, with 3 images labeled before any prediction (2 square red,
    1 circle red), its manager and an annotator."""
    project = project_factory(slug="shapes", name="Shapes")
    classes = taxonomy(project, label_class_factory)
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for path in (SQUARE_RED, SQUARE_RED, CIRCLE_RED):
        annotation_create(item=item_factory(project=project), user=annotator, class_ids=[classes[path].pk])
    return project, classes, member_of(project, Role.MANAGER, "boss"), annotator


def test_live_accuracy_and_labeled_counts_meet_predictions_logged_by_display_path(
    shapes, django_capture_on_commit_callbacks
):
    # Given 4 predictions of "angular / square / red" and 2 of "round / circle / blue", as the service logs them
    project, classes, manager, annotator = shapes
    squares = log_predictions(project, [SQUARE_RED] * 4 + [CIRCLE_BLUE] * 2, seed=81_000)[:4]
    client = page_client(manager)

    # ... the 4 square reds sent to the labeling queue by their class, and labeled there: 3 square red, 1 circle red
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"top_class": SQUARE_RED, "limit": 50}
        )
    assert response.status_code == 202, response.content
    items = sent_items(project)
    assert set(items) == {str(log.uid) for log in squares}
    for k, item in enumerate(items.values()):
        annotation_create(item=item, user=annotator, class_ids=[classes[CIRCLE_RED if k == 0 else SQUARE_RED].pk])

    # When the manager reads the monitoring API and page
    data = client.get(f"/api/projects/{project.slug}/monitoring/").json()
    html = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()

    # Then live accuracy counts the 3 the model got right of the 4 labeled (it read 0 of 4)
    [live] = data["live_accuracy"]
    assert (live["version"], live["n"], live["correct"]) == (1, 4, 3)
    assert "<td>75 %</td>" in html.split('id="live-accuracy"')[1]
    # and each class's predictions sit beside its own labels, under the path the pages show (labeled read 0)
    assert {c["path"]: (c["predicted"], c["labeled"]) for c in data["classes"]} == {
        SQUARE_RED: (4, 2 + 3), CIRCLE_RED: (0, 1 + 1), CIRCLE_BLUE: (2, 0),
    }  # fmt: skip
    assert {c["path"]: c["class_id"] for c in data["classes"]} == {p: c.pk for p, c in classes.items()}
    assert (data["predicted_total"], data["labeled_total"]) == (6, 7)
    mix = html.split('id="class-mix"')[1].split('id="drift"')[0]
    assert "Labeled (7 labels)" in mix
    assert "angular / square / red" in mix
    assert "angular  /  square" not in mix  # a display path is shown as it is, never spaced out twice


def test_predictions_logged_by_stored_path_count_too(shapes, django_capture_on_commit_callbacks):
    # Given predictions of an older checkpoint, whose class names were stored paths, sent and labeled right
    project, classes, manager, annotator = shapes
    log_predictions(project, [SQUARE_RED_STORED] * 2, seed=82_000)
    client = page_client(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 50})
    assert response.status_code == 202, response.content
    for item in sent_items(project).values():
        annotation_create(item=item, user=annotator, class_ids=[classes[SQUARE_RED].pk])

    # When the manager reads the figures
    data = client.get(f"/api/projects/{project.slug}/monitoring/").json()

    # Then both are right, and they are counted under the class as the pages show it
    [live] = data["live_accuracy"]
    assert (live["n"], live["correct"]) == (2, 2)
    by_path = {c["path"]: (c["predicted"], c["labeled"]) for c in data["classes"]}
    assert by_path[SQUARE_RED] == (2, 4)
    assert SQUARE_RED_STORED not in by_path


def test_send_to_queue_by_a_nested_class_finds_it_in_either_spelling(
    shapes, capsys, django_capture_on_commit_callbacks
):
    # Given 8 fresh predictions of angular / square / red (6 by a trained model's name, 2 by an older checkpoint's)
    # and 4 of round / circle / red, whose leaf has the same name
    project, _, manager, _ = shapes
    logs = log_predictions(project, [SQUARE_RED] * 6 + [SQUARE_RED_STORED] * 2 + [CIRCLE_RED] * 4, seed=83_000)
    squares = {str(log.uid) for log in logs if log.top_class in (SQUARE_RED, SQUARE_RED_STORED)}
    client = page_client(manager)
    url = f"/api/projects/{project.slug}/monitoring/send-to-queue/"

    # When the manager sends 2 of that class through the API in each spelling, then 2 by the command in each
    with django_capture_on_commit_callbacks(execute=True):
        stored = client.post(url, {"top_class": SQUARE_RED_STORED, "limit": 2})
        display = client.post(url, json.dumps({"top_class": SQUARE_RED, "limit": 2}), content_type="application/json")
        call_command("send_to_queue", project.slug, "--lowest-confidence", "2", "--class", SQUARE_RED_STORED)
        first = capsys.readouterr().out
        call_command("send_to_queue", project.slug, "--class", SQUARE_RED)  # the default: 50, 2 are left
        second = capsys.readouterr().out

    # Then each found them (it answered "No production images match"), and all 8 are in the queue, no circle red
    assert (stored.status_code, display.status_code) == (202, 202), (stored.content, display.content)
    assert "2 production images sent to the labeling queue of shapes" in first
    assert "2 production images sent to the labeling queue of shapes" in second
    assert set(sent_items(project)) == squares
    # and once they are all sent, the class's next send says why nothing was sent
    response = client.post(url, {"top_class": SQUARE_RED, "limit": 2})
    assert response.status_code == 400
    assert "No production images match" in json.dumps(response.json())
    # and a leaf's name alone is not a class of this taxonomy
    with pytest.raises(CommandError, match="No class 'red' in this project"):
        call_command("send_to_queue", project.slug, "--class", "red")


@pytest.mark.parametrize("count", ["0", "-5"])
def test_the_command_refuses_to_send_no_images_rather_than_sending_fifty(shapes, count):
    # Given kept production images of the project
    project, _, _, _ = shapes
    log_predictions(project, [SQUARE_RED] * 3, seed=84_000)

    # When someone asks the command for the 0 (or -5) least confident
    with pytest.raises(CommandError, match="How many: between 1 and 1000"):
        call_command("send_to_queue", project.slug, "--lowest-confidence", count)

    # Then it is refused as the API refuses it, and nothing was sent (0 used to send the default 50)
    assert not PredictionLog.objects.filter(project=project).exclude(queued_at=None).exists()
    assert not Job.objects.filter(project=project).exists()


def test_the_api_schema_describes_the_class_path_it_returns(shapes):
    # Given a member of the project reading the OpenAPI document
    _, _, manager, _ = shapes
    schema = page_client(manager).get("/api/schema/?format=json")
    assert schema.status_code == 200

    # Then the class mix's path is described as the display path the API returns, with the class's id beside it
    fields = json.loads(schema.content)["components"]["schemas"]["MonitoringClass"]["properties"]
    assert "a / b / c" in fields["path"]["description"]
    assert "Stored class path" not in fields["path"]["description"]
    assert "class_id" in fields


def test_a_multi_label_model_of_a_nested_taxonomy(
    project_factory, label_class_factory, item_factory, member_of, django_capture_on_commit_callbacks
):
    # Given a multi-label project of the nested taxonomy: 1 image labeled {square red, circle blue}, and 3 logged
    # predictions giving {square red, circle blue} (2) and {circle red} (1), by the model's display names
    project = project_factory(slug="scenes", name="Scenes", task_type=TaskType.MULTI)
    classes = taxonomy(project, label_class_factory)
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    both = [classes[SQUARE_RED].pk, classes[CIRCLE_BLUE].pk]
    annotation_create(item=item_factory(project=project), user=annotator, class_ids=both)
    logs = log_predictions(project, [(SQUARE_RED, CIRCLE_BLUE)] * 2 + [(CIRCLE_RED,)], seed=85_000)
    client = page_client(member_of(project, Role.MANAGER, "boss"))

    # When the manager sends the predictions that gave square red (typed as stored), and the annotator labels one
    # of them as predicted and the other {square red} only
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"top_class": SQUARE_RED_STORED, "limit": 50}
        )
    assert response.status_code == 202, response.content
    items = sent_items(project)
    assert set(items) == {str(log.uid) for log in logs if log.top_class == SQUARE_RED}
    first, second = items.values()
    annotation_create(item=first, user=annotator, class_ids=both)
    annotation_create(item=second, user=annotator, class_ids=[classes[SQUARE_RED].pk])
    data = client.get(f"/api/projects/{project.slug}/monitoring/").json()

    # Then each predicted class meets its labels, and live accuracy wants the whole set: 1 of 2
    assert {c["path"]: (c["predicted"], c["labeled"]) for c in data["classes"]} == {
        SQUARE_RED: (2, 3), CIRCLE_BLUE: (2, 2), CIRCLE_RED: (1, 0),
    }  # fmt: skip
    [live] = data["live_accuracy"]
    assert (live["n"], live["correct"]) == (2, 1)

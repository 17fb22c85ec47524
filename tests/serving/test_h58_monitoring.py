"""The Monitoring page and its API as a tester found them (h58): live accuracy counts production images, not the
requests that asked about them (one image asked three times is one trial, and the interval is on the images), and
send to queue refuses a field it does not know instead of sending the default 50."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item, Job, Role
from labeling.services.annotations import annotation_create
from serving.models import PredictionLog
from tests.factories import page_client, png_bytes, token_client

pytestmark = pytest.mark.django_db

SEND = "/api/projects/{}/monitoring/send-to-queue/"


@pytest.fixture
def project(project_factory, label_class_factory):
    project = project_factory(slug="shapes", name="Shapes")
    for name in ("cat", "dog"):
        label_class_factory(project=project, name=name)
    return project


def log_prediction(project, image: bytes, top_class: str, confidence: float, minutes_ago: int) -> PredictionLog:
    """A prediction the service logged, with its request image kept (each request keeps its own copy)."""
    uid = uuid.uuid4()
    key = default_storage.save(f"serving/{project.pk}/{uid}.png", ContentFile(image))
    return PredictionLog.objects.create(
        uid=uid, project=project, created_at=timezone.now() - timedelta(minutes=minutes_ago), version_number=3,
        top_class=top_class, confidence=confidence, margin=confidence / 2, image=key,
    )  # fmt: skip


def test_live_accuracy_counts_each_labeled_production_image_once(
    project, member_of, django_capture_on_commit_callbacks
):
    # Given 7 production images v3 was asked about 2, 3, 3, 2, 1, 2 and 2 times (a client's retries: the same file,
    # the same answer), all predicted "cat", sent to the queue and labeled cat
    minute = 0
    for seed, asked in enumerate([2, 3, 3, 2, 1, 2, 2]):
        for _ in range(asked):
            minute += 1
            log_prediction(project, png_bytes(700 + seed), "cat", 0.4 + seed / 100, minute)
    manager = member_of(project, Role.MANAGER)
    client = token_client(manager)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(SEND.format(project.slug), {"order": "lowest_confidence"}, format="json")
    assert answer.status_code == 202
    items = Item.objects.filter(project=project)
    assert items.count() == 7
    annotator = member_of(project, Role.ANNOTATOR)
    cat = project.classes.get(name="cat")
    for item in items:
        annotation_create(item=item, user=annotator, class_ids=[cat.pk])

    # When the manager reads the figures and opens the page
    [live] = client.get(f"/api/projects/{project.slug}/monitoring/").json()["live_accuracy"]
    html = page_client(manager).get(reverse("serving:monitoring", args=[project.slug])).content.decode()

    # Then v3 is right on 7 images of 7, with the Wilson interval of 7 trials (not 15), and the 15 predictions apart
    assert (live["version"], live["n"], live["correct"]) == (3, 7, 7)
    assert live["predictions"] == 15
    assert live["low"] == pytest.approx(0.646, abs=0.001)
    assert live["high"] == pytest.approx(1.0)
    card = html.split('id="live-accuracy"')[1].split('class="card"')[0]
    assert "<th>Images</th>" in card
    assert "<td>100 %</td><td>65 to 100 %</td>" in card
    assert '<td>7 <span class="muted small">(15 predictions)</span></td>' in card
    assert "Each image counts once" in card


@pytest.mark.parametrize(
    ("body", "unknown"),
    [
        ({"order": "lowest_confidence", "count": 1}, "count"),
        ({"limit": 1, "top-class": "cat", "Limit": 2}, "Limit, 'top-class'"),
    ],
)
def test_send_to_queue_refuses_an_unknown_field_by_name_and_sends_nothing(
    project, member_of, body, unknown, django_capture_on_commit_callbacks
):
    # Given 3 kept production images and a manager's script
    for seed in range(3):
        log_prediction(project, png_bytes(800 + seed), "cat", 0.5, seed + 1)
    client = token_client(member_of(project, Role.MANAGER))

    # When it posts a field send to queue does not take (the count under another name)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(SEND.format(project.slug), body, format="json")

    # Then it is 400, naming the field and the accepted ones, as the alert settings do, and nothing was sent
    assert answer.status_code == 400
    assert answer.json()["non_field_errors"] == [
        f"Unknown field(s): {unknown}. Accepted: order, limit, top_class, since, until, version, seed."
    ]
    assert not PredictionLog.objects.filter(project=project, queued_at__isnull=False).exists()
    assert not Job.objects.filter(project=project).exists()
    assert not Item.objects.filter(project=project).exists()


def test_send_to_queue_with_known_fields_only_still_sends(project, member_of, django_capture_on_commit_callbacks):
    # A browser posting with its session sends its CSRF token beside the fields: not an unknown field
    for seed in range(3):
        log_prediction(project, png_bytes(900 + seed), "cat", 0.5, seed + 1)
    client = page_client(member_of(project, Role.MANAGER))
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(SEND.format(project.slug), {"limit": 2, "csrfmiddlewaretoken": "x"})
    assert answer.status_code == 202
    assert PredictionLog.objects.filter(project=project, queued_at__isnull=False).count() == 2


def test_the_confidence_quantiles_are_labelled_approximate_in_the_schema_and_on_the_page(project, member_of):
    # Given a day of predictions whose 10th percentile the 20-bin histogram only approximates
    for seed, confidence in enumerate([0.5825, 0.6, 0.9, 0.91, 0.95, 0.97, 0.98, 0.99, 0.99, 0.995]):
        PredictionLog.objects.create(
            uid=uuid.uuid4(), project=project, created_at=timezone.now() - timedelta(minutes=seed + 1),
            version_number=3, top_class="cat", confidence=confidence, margin=confidence / 2,
        )  # fmt: skip
    manager = member_of(project, Role.MANAGER)

    # When a client reads the schema and the figures, and the manager opens the page
    schema = token_client(manager).get("/api/schema/?format=json").json()
    [day] = token_client(manager).get(f"/api/projects/{project.slug}/monitoring/").json()["days"]
    html = page_client(manager).get(reverse("serving:monitoring", args=[project.slug])).content.decode()

    # Then p10 says it is approximate, as the median does, and is within a bin of the exact value; the page says so
    fields = schema["components"]["schemas"]["MonitoringDay"]["properties"]
    assert "approximate (20 bins)" in fields["p10"]["description"]
    assert "approximate (20 bins)" in fields["median"]["description"]
    exact_p10 = 0.5825 + 0.9 * (0.6 - 0.5825)  # numpy's linear method on the 10 values
    assert abs(day["p10"] - exact_p10) < 0.05
    note = html.split('id="quantiles-approximate">')[1].split("</span>")[0]
    assert " ".join(note.split()) == (
        "The median and the 10th percentile are approximate: read from 20 bins of 0.05, interpolated within a bin "
        "(off by less than 0.05); the share is exact."
    )

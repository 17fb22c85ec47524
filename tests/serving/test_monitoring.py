"""The Monitoring page and its API: production volume and confidence per day, predicted against labeled classes,
drift reports with the threshold and a running check's progress, live accuracy; who may see it; bounded queries."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item, Role
from labeling.services.annotations import annotation_create
from serving.models import DriftReport, PredictionLog
from serving.selectors import monitoring as selectors
from tests.factories import page_client, png_bytes

pytestmark = pytest.mark.django_db


def log_predictions(project, specs, *, version: int = 1, keep_images: bool = True) -> list[PredictionLog]:
    """One PredictionLog row per (days ago, top class, confidence), with its image kept in storage."""
    now = timezone.now()
    rows = []
    for k, (days_ago, top_class, confidence) in enumerate(specs):
        uid = uuid.uuid4()
        image = ""
        if keep_images:
            image = default_storage.save(f"serving/{project.pk}/{uid}.png", ContentFile(png_bytes(50_000 + k)))
        when = now - timedelta(days=days_ago, seconds=k % 60)
        rows.append(
            PredictionLog(
                uid=uid, project=project, created_at=when, version_number=version, top_class=top_class,
                confidence=confidence, margin=confidence / 2, image=image,
            )
        )  # fmt: skip
    return PredictionLog.objects.bulk_create(rows)


def labeled(project, item, label_class, user) -> None:
    annotation_create(item=item, user=user, class_ids=[label_class.pk])


@pytest.fixture
def monitored(project_factory, label_class_factory, item_factory, member_of):
    """A project with 3 classes, 4 labeled items (3 cat, 1 dog) and 30 predictions over 3 days."""
    project = project_factory(slug="watched", name="Watched")
    cat, dog, bird = (label_class_factory(project=project, name=n) for n in ("cat", "dog", "bird"))
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for label_class in (cat, cat, cat, dog):
        labeled(project, item_factory(project=project), label_class, annotator)
    specs = [(0, "cat", 0.9)] * 10 + [(1, "dog", 0.6)] * 12 + [(2, "bird", 0.3)] * 8
    logs = log_predictions(project, specs)
    return project, {"cat": cat, "dog": dog, "bird": bird}, logs


def test_monitoring_page_draws_volume_confidence_class_mix_and_drift(monitored, member_of):
    # Given a project with predictions on three days, a finished drift check that flagged drift and one running
    project, _, _ = monitored
    now = timezone.now()
    for hours, p_value in ((30, 0.4), (6, 0.001)):
        DriftReport.objects.create(
            project=project, version_number=1, window_start=now - timedelta(hours=hours + 6),
            window_end=now - timedelta(hours=hours), n_production=500, n_reference=800, statistic=0.1,
            p_value=p_value, threshold=0.01, drifted=p_value < 0.01, status=DriftReport.Status.DONE, progress=1.0,
        )  # fmt: skip
    DriftReport.objects.create(
        project=project, version_number=1, window_start=now - timedelta(hours=6), window_end=now,
        threshold=0.01, progress=0.4,
    )  # fmt: skip

    # When a reviewer opens the Monitoring page
    client = page_client(member_of(project, Role.REVIEWER))
    response = client.get(reverse("serving:monitoring", args=[project.slug]))

    # Then it shows the volume (one bar per day with predictions) and says it has no latency
    assert response.status_code == 200
    html = response.content.decode()
    volume = html.split('id="volume"')[1].split('id="confidence"')[0]
    assert '<strong id="total-predictions">30</strong>' in volume
    assert volume.count('class="bar"') == 3
    assert "has a measured latency" in volume  # rows logged without one: the page says so, draws no line
    # ... and once the service has measured requests, their p50 and p95 per day are drawn
    row = PredictionLog.objects.filter(project=project).order_by("-created_at").first()
    PredictionLog.objects.filter(pk=row.pk).update(latency_ms=12.5)
    again = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()
    latency = again.split("<h3>Latency</h3>")[1].split('id="latency-note"')[0]
    assert latency.count("<circle") == 2  # one day with a measurement: a p50 point and a p95 point
    assert re.search(r"p50 12\.\d", latency)
    # and the confidence per day: median, 10th percentile and low share, a point per day each
    confidence = html.split('id="confidence"')[1].split('id="class-mix"')[0]
    assert confidence.count("<circle") == 9
    assert re.search(r"median 0\.[89]\d\d", confidence)  # the day of 0.9s reads ~0.9, not an average of all days
    # and the predicted classes beside the labeled ones (3 cat, 1 dog of 4 labels)
    mix = html.split('id="class-mix"')[1].split('id="drift"')[0]
    assert "Labeled (4 labels)" in mix
    assert "0.75" in mix.split("Labeled")[1]
    assert "0.40" in mix.split("Labeled")[0]
    # and the drift windows' p-values with the threshold line, the drifted window marked, n shown, progress polling
    drift = html.split('id="drift"')[1].split('id="live-accuracy"')[0]
    assert 'class="threshold"' in drift
    assert "threshold 0.01" in drift
    assert drift.count('class="mark"') == 1
    assert "<td>500</td><td>800</td>" in drift
    assert 'hx-trigger="every 2s"' in drift
    assert 'aria-valuenow="40"' in drift
    # and a reviewer cannot send to the queue
    assert 'id="send-to-queue"' not in html


def test_the_drift_fragment_stops_polling_when_the_check_ends(monitored, member_of):
    project, _, _ = monitored
    report = DriftReport.objects.create(
        project=project, version_number=1, window_start=timezone.now() - timedelta(hours=6),
        window_end=timezone.now(), threshold=0.01, progress=0.5,
    )  # fmt: skip
    client = page_client(member_of(project, Role.ML_ENGINEER))
    url = reverse("serving:monitoring_drift", args=[project.slug])
    assert "every 2s" in client.get(url, headers={"HX-Request": "true"}).content.decode()

    DriftReport.objects.filter(pk=report.pk).update(status=DriftReport.Status.DONE, p_value=0.5, progress=1.0)

    html = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "every 2s" not in html
    assert "<td>0.500</td>" in html


@pytest.mark.parametrize(("role", "status"), [(Role.ANNOTATOR, 403), (Role.ML_ENGINEER, 200), (Role.MANAGER, 200)])
def test_who_sees_the_monitoring_page(monitored, member_of, role, status):
    project, _, _ = monitored
    response = page_client(member_of(project, role)).get(reverse("serving:monitoring", args=[project.slug]))
    assert response.status_code == status
    if status == 200:
        assert ('id="send-to-queue"' in response.content.decode()) is (role == Role.MANAGER)


def test_another_projects_monitoring_is_not_found(monitored, project_factory, member_of):
    # Given a manager of another project
    project, _, _ = monitored
    stranger = member_of(project_factory(slug="other"), Role.MANAGER)
    client = page_client(stranger)

    # Then this project's page, fragment, send, API and send API all answer 404
    assert client.get(reverse("serving:monitoring", args=[project.slug])).status_code == 404
    assert client.get(reverse("serving:monitoring_drift", args=[project.slug])).status_code == 404
    assert client.post(reverse("serving:send_to_queue", args=[project.slug]), {"limit": 1}).status_code == 404
    assert client.get(f"/api/projects/{project.slug}/monitoring/").status_code == 404
    assert client.post(f"/api/projects/{project.slug}/monitoring/send-to-queue/", {}).status_code == 404
    assert not PredictionLog.objects.filter(project=project).exclude(queued_at=None).exists()


def test_monitoring_api_returns_the_figures(monitored, member_of):
    # Given the monitored project
    project, _, _ = monitored
    client = page_client(member_of(project, Role.ML_ENGINEER))

    # ... whose service measured 10, 20 and 30 ms for the newest day's first three predictions
    newest = PredictionLog.objects.filter(project=project).order_by("-created_at")[:10]
    day = newest[0].created_at.date()
    for row, ms in zip([r for r in newest if r.created_at.date() == day][:3], (10.2, 20.5, 30.7), strict=True):
        PredictionLog.objects.filter(pk=row.pk).update(latency_ms=ms)

    # When the ML engineer asks the API for a week
    response = client.get(f"/api/projects/{project.slug}/monitoring/?days=7")

    # Then it returns the page's figures as JSON
    assert response.status_code == 200
    data = response.json()
    assert data["total"] == 30
    assert data["versions"] == [{"version": 1, "count": 30}]
    assert [d["count"] for d in data["days"]] == [8, 12, 10]
    assert data["days"][0]["median"] == pytest.approx(0.3, abs=0.05)
    assert {c["path"]: c["labeled"] for c in data["classes"]} == {"cat": 3, "dog": 1, "bird": 0}
    (latency,) = data["latency"]  # only that day has measurements
    assert (latency["day"], latency["count"]) == (day.isoformat(), 3)
    assert 20 <= latency["p50"] <= 21
    assert 30 <= latency["p95"] <= 31
    assert data["drift_running"] is False
    assert data["kept_images"] == 30
    # and a bad window is refused
    assert client.get(f"/api/projects/{project.slug}/monitoring/?days=0").status_code == 400


def test_live_accuracy_counts_labeled_production_images(monitored, member_of, django_capture_on_commit_callbacks):
    # Given 10 least-confident predictions (8 "bird" at 0.3, 2 "dog" at 0.6) sent to the queue and labeled:
    # the birds as bird, the two dogs as cat
    project, classes, _ = monitored
    manager = member_of(project, Role.MANAGER)
    client = page_client(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 10})
    assert response.status_code == 202
    sent = PredictionLog.objects.filter(project=project).exclude(queued_at=None)
    assert sent.count() == 10
    annotator = member_of(project, Role.ANNOTATOR)
    for log in sent:
        item = Item.objects.get(project=project, sha256=log.image_sha256)
        labeled(project, item, classes["bird"] if log.top_class == "bird" else classes["cat"], annotator)

    # When anyone with metrics opens the page or the API
    figures = client.get(f"/api/projects/{project.slug}/monitoring/").json()
    html = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()

    # Then v1's live accuracy is 8 of 10 with its Wilson interval
    [live] = figures["live_accuracy"]
    assert (live["version"], live["n"], live["correct"]) == (1, 10, 8)
    assert live["low"] == pytest.approx(0.490, abs=0.005)
    assert live["high"] == pytest.approx(0.943, abs=0.005)
    row = html.split('id="live-accuracy"')[1]
    assert "<td>80 %</td><td>49 to 94 %</td>" in row
    assert "<td>10</td>" in row


def test_the_page_reads_a_large_log_in_a_bounded_number_of_queries(monitored, member_of, django_assert_max_num_queries):
    # Given 5,000 more predictions over 30 days (the queries do not grow with rows; 100k reads the same way)
    project, _, _ = monitored
    log_predictions(project, [(k % 30, ("cat", "dog", "bird")[k % 3], (k % 97) / 97) for k in range(5000)],
                    keep_images=False)  # fmt: skip
    client = page_client(member_of(project, Role.MANAGER))

    # Then the page renders every chart in a fixed number of queries
    with django_assert_max_num_queries(20):
        response = client.get(reverse("serving:monitoring", args=[project.slug]))
    assert response.status_code == 200
    assert response.content.decode().count('class="bar"') == 30


def test_the_volume_axis_counts_whole_predictions():
    # A quiet day: 0 to 3 predictions. The axis used to read 0, 0.5, 1, ... "predictions".
    from serving.charts import time_chart

    chart = time_chart(["12-01", "12-02", "12-03"], y_label="predictions", bars=[0, 3, 1], counts=True)
    assert [t["text"] for t in chart["y_ticks"]] == ["0", "1", "2", "3"]
    empty = time_chart(["12-01"], y_label="predictions", bars=[None], counts=True)
    assert [t["text"] for t in empty["y_ticks"]] == ["0", "1"]
    # ... while a share keeps its fractions
    shares = time_chart(["12-01"], y_label="confidence", lines=[("mean", [0.5], "#000")], y_range=(0.0, 1.0))
    assert "0.2" in [t["text"] for t in shares["y_ticks"]]


def test_the_page_and_the_api_read_the_classes_once_and_map_the_logged_names_once(
    monitored, member_of, monkeypatch, django_capture_on_commit_callbacks
):
    # Given predictions sent to the queue and labeled, so that the class mix and live accuracy both match logged
    # class names to classes
    project, classes, _ = monitored
    client = page_client(member_of(project, Role.MANAGER))
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 4}).status_code == 202
    annotator = member_of(project, Role.ANNOTATOR)
    for log in PredictionLog.objects.filter(project=project).exclude(queued_at=None):
        labeled(project, Item.objects.get(project=project, sha256=log.image_sha256), classes["bird"], annotator)
    built = []
    real = selectors.class_ids_by_logged_name
    monkeypatch.setattr(selectors, "class_ids_by_logged_name", lambda tree: built.append(tree) or real(tree))

    for url in (reverse("serving:monitoring", args=[project.slug]), f"/api/projects/{project.slug}/monitoring/"):
        # When the page or the API is read
        built.clear()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)

        # Then the class table is read once and the logged names are mapped to classes once, for both figures
        assert response.status_code == 200
        assert sum('"labeling_labelclass"' in q["sql"] for q in queries.captured_queries) == 1
        assert len(built) == 1
    assert response.json()["live_accuracy"][0]["n"] == 4

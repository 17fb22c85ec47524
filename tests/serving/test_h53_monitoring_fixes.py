"""Serving fixes from tester 53's demo: live accuracy counts only labels made after an image was sent (P3); the
monitoring page with no predictions and a bad ?days= (P4); the drift refusal's one full stop (P6); the keys page
gives the prediction service's address and the web app answers /v1/ with it (P7); the drift banner speaks only of
the active version (P10)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item, Role
from labeling.services.annotations import annotation_create
from serving.models import DriftReport, PredictionLog
from tests.factories import page_client, png_bytes
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def logged(project, seed: int, top_class: str, confidence: float, *, version: int = 1) -> PredictionLog:
    """A prediction whose kept request image is png_bytes(seed)."""
    uid = uuid.uuid4()
    image = default_storage.save(f"serving/{project.pk}/{uid}.png", ContentFile(png_bytes(seed)))
    return PredictionLog.objects.create(
        uid=uid, project=project, created_at=timezone.now() - timedelta(minutes=5), version_number=version,
        top_class=top_class, confidence=confidence, margin=0.1, image=image,
    )  # fmt: skip


def version(project, number: int, *, active: bool) -> ModelVersion:
    return ModelVersion.objects.create(
        project=project, number=number, artifact_path=f"models/{number}", architecture="lite0", active=active
    )


def test_live_accuracy_leaves_out_sent_images_the_project_had_labeled_before(
    project_factory, label_class_factory, item_factory, member_of, django_capture_on_commit_callbacks
):
    # Given an item labeled "cat" before anything was sent (a training label of v1), and two production images:
    # a copy of that item (v1 says cat) and a new one (v1 says dog)
    project = project_factory(slug="live", name="Live")
    cat, dog = (label_class_factory(project=project, name=n) for n in ("cat", "dog"))
    annotator = member_of(project, Role.ANNOTATOR)
    known = item_factory(project=project, sha256=hashlib.sha256(png_bytes(7001)).hexdigest())
    annotation_create(item=known, user=annotator, class_ids=[cat.pk])
    logged(project, 7001, "cat", 0.3)
    new = logged(project, 7002, "dog", 0.4)
    manager = member_of(project, Role.MANAGER)
    client = page_client(manager)

    # When the manager sends both to the queue (the copy is a duplicate of the labeled item)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 10})
    assert response.status_code == 202

    # Then, before anyone labels what was sent, there is no live accuracy: the old label does not count
    figures = client.get(f"/api/projects/{project.slug}/monitoring/").json()
    assert figures["live_accuracy"] == []
    assert figures["live_labeled_before"] == 1
    html = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()
    card = html.split('id="live-accuracy"')[1].split('id="send-to-queue"')[0]
    assert "No production image sent to the queue has been labeled since it was sent" in card
    assert "1 sent image was labeled before it was sent" in card

    # When an annotator labels the new image "cat" (v1 said dog)
    new.refresh_from_db()
    annotation_create(item=Item.objects.get(project=project, sha256=new.image_sha256), user=annotator,
                      class_ids=[cat.pk])  # fmt: skip

    # Then live accuracy is 0 of 1: only the label made after the send counts
    figures = client.get(f"/api/projects/{project.slug}/monitoring/").json()
    [live] = figures["live_accuracy"]
    assert (live["version"], live["n"], live["correct"]) == (1, 1, 0)
    html = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()
    card = html.split('id="live-accuracy"')[1].split('id="send-to-queue"')[0]
    assert "<td>0 %</td>" in card
    assert "<td>1</td>" in card
    assert dog  # the class v1 predicted exists: the miss is a wrong class, not an unknown name


def test_monitoring_with_no_predictions_says_so_under_latency(project_factory, member_of):
    # Given a project the prediction service has not answered for yet
    project = project_factory(slug="quiet", name="Quiet")

    # When a manager opens Monitoring
    html = page_client(member_of(project, Role.MANAGER)).get(reverse("serving:monitoring", args=[project.slug]))

    # Then the latency note says there are no predictions, not that rows lack a measurement
    volume = html.content.decode().split('id="volume"')[1].split('id="confidence"')[0]
    assert "No predictions in this period." in volume
    assert "rows logged before" not in volume


@pytest.mark.parametrize("given", ["-5", "0", "abc", "400"])
def test_a_bad_days_value_shows_the_default_window_and_says_so(project_factory, member_of, given):
    project = project_factory(slug="days", name="Days")
    client = page_client(member_of(project, Role.MANAGER))

    response = client.get(reverse("serving:monitoring", args=[project.slug]), {"days": given})

    assert response.status_code == 200
    html = response.content.decode()
    assert f"Days must be a whole number from 1 to 366, not “{given}”: showing 30." in html
    assert "from the prediction log of the last 30 days" in html
    assert "last 1 days" not in html


def test_one_day_reads_in_the_singular(project_factory, member_of):
    project = project_factory(slug="oneday", name="One day")
    html = page_client(member_of(project, Role.MANAGER)).get(
        reverse("serving:monitoring", args=[project.slug]), {"days": "1"}
    )
    text = " ".join(html.content.decode().split())
    assert "from the prediction log of the last 1 day (" in text
    assert 'id="days-note"' not in text


def test_the_drift_refusal_ends_with_one_full_stop(project_factory, member_of):
    # Given an active version that has answered no prediction yet
    project = project_factory(slug="fresh", name="Fresh")
    version(project, 3, active=True)
    client = page_client(member_of(project, Role.MANAGER))

    # When the manager clicks "Check drift now"
    response = client.post(reverse("serving:monitoring_drift_check", args=[project.slug]), follow=True)

    # Then the refusal names version 3 and ends with one full stop
    text = " ".join(response.content.decode().split())
    assert "No drift check: 0 predictions of version 3 carry an embedding" in text
    assert "with version 3." in text
    assert "version 3.." not in text


def test_the_keys_page_gives_the_prediction_services_address(project_factory, member_of, settings):
    project = project_factory(slug="addr", name="Addr")
    client = page_client(member_of(project, Role.ML_ENGINEER))

    # Without a configured address: this host on the service's default port, and the page says where it came from
    html = client.get(reverse("serving:keys", args=[project.slug]), HTTP_HOST="127.0.0.1:8161").content.decode()
    assert "POST http://127.0.0.1:8001/v1/projects/addr/predict" in html
    assert "LABELLOOP_PREDICTION_URL" in html

    # With one: that address, and no guess
    settings.LABELLOOP_PREDICTION_URL = "https://predict.example.com/"
    html = client.get(reverse("serving:keys", args=[project.slug])).content.decode()
    assert "POST https://predict.example.com/v1/projects/addr/predict" in html
    assert 'id="predict-url-note"' not in html


@pytest.mark.parametrize("method", ["post", "get"])
def test_the_web_app_answers_v1_paths_with_the_prediction_services_address(client, settings, method):
    # Given a caller that sends a prediction request to the web app's address instead of the service's
    settings.LABELLOOP_PREDICTION_URL = "http://127.0.0.1:8162"

    response = getattr(client, method)(
        "/v1/projects/digits/predict", HTTP_AUTHORIZATION="Bearer llp_anything", HTTP_HOST="127.0.0.1:8161"
    )

    # Then a JSON 404 names where the service answers, not the HTML "not a member" page
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["prediction_service"] == "http://127.0.0.1:8162"
    assert "POST http://127.0.0.1:8162/v1/projects/<slug>/predict" in body["detail"]
    assert "member" not in body["detail"]


def test_the_drift_banner_ends_when_another_version_is_made_active(project_factory, member_of):
    # Given v3 active with a finished drift check that flagged drift
    project = project_factory(slug="banner", name="Banner")
    v2, v3 = version(project, 2, active=False), version(project, 3, active=True)
    now = timezone.now()
    DriftReport.objects.create(
        project=project, version_number=3, window_start=now - timedelta(hours=1), window_end=now,
        n_production=132, n_reference=229, statistic=0.02, p_value=0.00498, threshold=0.01, drifted=True,
        status=DriftReport.Status.DONE, progress=1.0,
    )  # fmt: skip
    client = page_client(member_of(project, Role.MANAGER))
    page = reverse("serving:monitoring", args=[project.slug])
    banner = "Production inputs drifted from the project&#x27;s images: version 3"  # as the page escapes it
    assert banner in client.get(page).content.decode()

    # When v2 is made active
    ModelVersion.objects.filter(pk=v3.pk).update(active=False)
    ModelVersion.objects.filter(pk=v2.pk).update(active=True)

    # Then no page raises v3's banner, while Monitoring still lists v3's check by its version
    html = client.get(page).content.decode()
    assert "Production inputs drifted" not in html
    drift = html.split('id="drift"')[1].split('id="live-accuracy"')[0]
    assert "<td>v3" in drift
    assert "<strong>drifted</strong>" in drift

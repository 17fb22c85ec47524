"""The Monitoring page and its API as a tester found them (h56): the drift table names its reference for what it is,
send to queue says where the images go and counts only the images it queued (not copies of the project's own), and
the alert settings are readable by every role that sees the page and refuse a field they do not know."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from labeling.models import Role
from serving.models import DriftReport, PredictionLog, ServingSettings
from tests.factories import page_client, page_import, png_bytes, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(project_factory, label_class_factory):
    project = project_factory(slug="digits", name="Digits")
    for name in ("cat", "dog"):
        label_class_factory(project=project, name=name)
    return project


def log_prediction(project, image: bytes, confidence: float, hours_ago: float = 1.0) -> PredictionLog:
    """A prediction the service logged, with its request image kept."""
    uid = uuid.uuid4()
    key = default_storage.save(f"serving/{project.pk}/{uid}.png", ContentFile(image))
    return PredictionLog.objects.create(
        uid=uid, project=project, created_at=timezone.now() - timedelta(hours=hours_ago), version_number=1,
        top_class="cat", confidence=confidence, margin=confidence / 2, image=key,
    )  # fmt: skip


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# P1 ------------------------------------------------------------------------------------------------------------------


def test_the_drift_table_names_the_reference_sample_not_labeled_images(project, member_of):
    # Given a drift check of 123 production predictions against the reference sample of 1000 project images
    now = timezone.now()
    DriftReport.objects.create(
        project=project, version_number=2, window_start=now - timedelta(hours=2), window_end=now, n_production=123,
        n_reference=1000, statistic=0.1, p_value=0.005, threshold=0.01, drifted=True, model_file="model.onnx",
        status=DriftReport.Status.DONE, progress=1.0,
    )  # fmt: skip
    manager = member_of(project, Role.MANAGER)

    # When the manager opens the Monitoring page, and the drift card polls itself
    page = page_client(manager).get(reverse("serving:monitoring", args=[project.slug])).content.decode()
    card = page_client(manager).get(reverse("serving:monitoring_drift", args=[project.slug])).content.decode()

    # Then the column says what the 1000 is: the reference, which the text above defines as a sample of the
    # project's own images, labeled or not, embedded by the same file
    for html in (page, card):
        drift = html.split('id="drift"')[1].split('id="alerts"')[0]
        assert "<th>n reference</th>" in drift
        assert "<th>n labeled</th>" not in drift
        assert "random sample of up to 1000 of the project's own images, labeled or not" in " ".join(drift.split())
        assert "the reference images are embedded by the same file" in " ".join(drift.split())
        assert "labeled images are embedded" not in " ".join(drift.split())
        assert "<td>123</td><td>1000</td>" in drift

    # And the API says the same of n_reference
    schema = token_client(manager).get("/api/schema/", {"format": "json"}).json()
    field = schema["components"]["schemas"]["MonitoringDrift"]["properties"]["n_reference"]
    assert field["description"].startswith("Size of the reference: a random sample of up to 1,000 of the project's")


# P2 ------------------------------------------------------------------------------------------------------------------


def test_send_to_queue_counts_only_the_images_it_queued(project, member_of, django_capture_on_commit_callbacks):
    # Given a project that imported 2 images, and 7 production predictions: the 2 least confident are exact copies
    # of those 2 project images, the other 5 are new images
    manager = member_of(project, Role.MANAGER)
    page = page_client(manager)
    page_import(page, project, {"a.png": png_bytes(1), "b.png": png_bytes(2)}, django_capture_on_commit_callbacks)
    copies = [log_prediction(project, png_bytes(seed), 0.05 + seed / 100) for seed in (1, 2)]
    new = [log_prediction(project, png_bytes(100 + k), 0.2 + k / 20) for k in range(5)]
    url = reverse("serving:send_to_queue", args=[project.slug])
    monitoring = reverse("serving:monitoring", args=[project.slug])

    # When the manager sends the 5 least confident to the labeling queue
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(url, {"order": "lowest_confidence", "limit": 5})

    # Then the message says 3 were sent and 2 were already in the project
    assert response.status_code == 302
    [message] = flash(response)
    assert message.startswith("3 production images sent to the labeling queue (import job ")
    assert message.endswith("; 2 were already in the project: not sent again.")

    # And the API counts the 3 sent images and the 2 copies apart; the copies are done, not kept for later
    figures = token_client(manager).get(f"/api/projects/{project.slug}/monitoring/").json()
    assert figures["sent_to_queue"] == 3
    assert figures["already_in_project"] == 2
    assert figures["kept_images"] == 2
    assert set(PredictionLog.objects.exclude(queued_at=None).values_list("pk", flat=True)) == {
        log.pk for log in [*copies, *new[:3]]
    }

    # And the card says where sent images go and what was sent so far
    card = " ".join(page.get(monitoring).content.decode().split('id="send-to-queue"')[1].split())
    assert "2 production images are kept and not sent yet" in card
    assert "to the front of the labeling queue, in the order chosen, until the next scoring ranks them" in card
    assert "the strategy ranks them with the other unlabeled items." not in card
    assert "Sent so far: 3 images. 2 picked images were already in the project and not sent." in card

    # And a second send takes the 2 kept ones, never the copies again
    with django_capture_on_commit_callbacks(execute=True):
        again = page.post(url, {"order": "lowest_confidence", "limit": 5})
    assert flash(again)[0].startswith("2 production images sent to the labeling queue (import job ")
    figures = token_client(manager).get(f"/api/projects/{project.slug}/monitoring/").json()
    assert (figures["sent_to_queue"], figures["already_in_project"], figures["kept_images"]) == (5, 2, 0)


def test_the_send_job_answer_says_how_many_images_it_sends(project, member_of, django_capture_on_commit_callbacks):
    # Given one project image and two production predictions: a copy of it and a new image
    manager = member_of(project, Role.MANAGER)
    page_import(page_client(manager), project, {"a.png": png_bytes(1)}, django_capture_on_commit_callbacks)
    log_prediction(project, png_bytes(1), 0.1)
    log_prediction(project, png_bytes(7), 0.2)

    # When a script sends them through the API
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(
            f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 2}, format="json"
        )

    # Then the job's answer says 1 sent and 1 already in the project
    assert answer.status_code == 202
    params = answer.json()["params"]["send_counts"]
    assert (params["sent"], params["already_in_project"]) == (1, 1)


# P4 and P5 -----------------------------------------------------------------------------------------------------------


ALERTS = "/api/projects/{}/monitoring/alert-settings/"


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ML_ENGINEER])
def test_reviewers_and_ml_engineers_read_the_thresholds_and_change_nothing(project, member_of, role):
    # Given a project whose manager set a webhook and a drift threshold
    ServingSettings.objects.create(project=project, drift_p_threshold=0.02, webhook_url="https://hooks.example/x")
    client = token_client(member_of(project, role))
    url = ALERTS.format(project.slug)

    # When a reviewer or ML engineer reads the alert settings
    answer = client.get(url)

    # Then they see the thresholds, as the page shows them, but not the webhook's address or secret
    assert answer.status_code == 200
    assert answer.json() == {
        "drift_p_threshold": 0.02,
        "low_confidence_threshold": 0.5,
        "low_confidence_alert_share": 0.3,
        "webhook_set": True,
    }

    # And they cannot change them
    for method in (client.patch, client.put):
        refused = method(url, {"drift_p_threshold": 0.3}, format="json")
        assert refused.status_code == 403
    assert ServingSettings.objects.get(project=project).drift_p_threshold == 0.02


def test_a_manager_reads_everything(project, member_of):
    ServingSettings.objects.create(project=project, webhook_url="https://hooks.example/x")
    answer = token_client(member_of(project, Role.MANAGER)).get(ALERTS.format(project.slug))
    assert answer.status_code == 200
    assert answer.json()["webhook_url"] == "https://hooks.example/x"
    assert len(answer.json()["secret_hint"]) == 4


@pytest.mark.parametrize(
    "body", [{"drift_p_value": 0.2}, {"drift_p_threshold": 0.2, "drift_p_value": 0.2}, {"secret_hint": "abcd"}]
)
def test_an_unknown_alert_setting_is_refused_by_name_and_changes_nothing(project, member_of, body):
    # Given a manager's script
    client = token_client(member_of(project, Role.MANAGER))

    # When it PATCHes a field the settings do not have (misspelt, or one that is read-only)
    answer = client.patch(ALERTS.format(project.slug), body, format="json")

    # Then it is 400, naming the field and the accepted ones, and nothing changed
    assert answer.status_code == 400
    [message] = answer.json()["non_field_errors"]
    unknown = next(key for key in body if key != "drift_p_threshold")
    assert message == (
        f"Unknown field(s): {unknown}. Accepted: webhook_url, drift_p_threshold, low_confidence_threshold, "
        "low_confidence_alert_share."
    )
    assert client.get(ALERTS.format(project.slug)).json()["drift_p_threshold"] == 0.01

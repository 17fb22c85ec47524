"""Send to queue: a manager's selection of production predictions goes through the validated import and lands in
front of an annotator; bad filters change nothing; the API, the command and the daily automatic send."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item, ItemState, Job, JobKind, JobStatus, Role
from labeling.services.queue import item_claim_next
from serving.models import PredictionLog
from serving.tasks import predictions_auto_queue_task
from tests.factories import page_client, png_bytes

pytestmark = pytest.mark.django_db


def log_predictions(project, specs, *, keep_images: bool = True, seed: int = 60_000) -> list[PredictionLog]:
    """One PredictionLog row per (hours ago, top class, confidence), with its image kept in storage."""
    now = timezone.now()
    rows = []
    for k, (hours_ago, top_class, confidence) in enumerate(specs):
        uid = uuid.uuid4()
        image = ""
        if keep_images:
            image = default_storage.save(f"serving/{project.pk}/{uid}.png", ContentFile(png_bytes(seed + k)))
        rows.append(
            PredictionLog(
                uid=uid, project=project, created_at=now - timedelta(hours=hours_ago, seconds=k), version_number=1,
                top_class=top_class, confidence=confidence, margin=confidence / 2, image=image,
            )
        )  # fmt: skip
    return PredictionLog.objects.bulk_create(rows)


@pytest.fixture
def production(project_factory, label_class_factory, item_factory, member_of):
    """A project whose own items are all labeled, and 12 production predictions 3 hours apart (confidence 0.05
    .. 0.6, rising with age; the odd ones predicted cat)."""
    project = project_factory(slug="prod", name="Prod")
    for name in ("cat", "dog"):
        label_class_factory(project=project, name=name)
    item_factory(project=project, state=ItemState.LABELED)
    specs = [(k * 3, "cat" if k % 2 else "dog", 0.05 * (k + 1)) for k in range(12)]
    return project, log_predictions(project, specs), member_of(project, Role.MANAGER, "boss")


def sent_shas(project) -> set[str]:
    return set(
        PredictionLog.objects.filter(project=project).exclude(queued_at=None).values_list("image_sha256", flat=True)
    )


def test_the_least_confident_production_images_come_next_in_the_queue(
    production, member_of, django_capture_on_commit_callbacks
):
    # Given a manager on the Monitoring page
    project, logs, manager = production
    client = page_client(manager)

    # When they send the 3 least-confident production images
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("serving:send_to_queue", args=[project.slug]), {"order": "lowest_confidence", "limit": 3}
        )

    # Then an import job brought exactly those images in (validated, stored as items) and the page follows it
    assert response.status_code == 302
    job = Job.objects.get(project=project, kind=JobKind.IMPORT)
    assert job.status == JobStatus.SUCCEEDED
    assert response["Location"].endswith(f"?job={job.pk}")
    lowest = sorted(logs, key=lambda log: log.confidence)[:3]
    assert {log.uid for log in PredictionLog.objects.exclude(queued_at=None)} == {log.uid for log in lowest}
    items = Item.objects.filter(project=project, sha256__in=sent_shas(project))
    assert items.count() == 3
    assert all(i.original_name.startswith("production/") for i in items)
    page = client.get(response["Location"]).content.decode()
    assert f"Import #{job.number}" in page

    # And the annotator's next item is one of them
    item = item_claim_next(project=project, user=member_of(project, Role.ANNOTATOR))
    assert item is not None
    assert item.sha256 in sent_shas(project)

    # And sending again does not send the same predictions twice
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("serving:send_to_queue", args=[project.slug]), {"order": "lowest_confidence", "limit": 3})
    assert PredictionLog.objects.exclude(queued_at=None).count() == 6


def test_a_class_and_a_time_window_narrow_the_selection(production, django_capture_on_commit_callbacks):
    # Given predictions every 3 hours; the cats are the odd ones
    project, _logs, manager = production
    since = (timezone.now() - timedelta(hours=10)).strftime("%Y-%m-%d %H:%M:%S")

    # When the manager sends the cats of the last 10 hours
    with django_capture_on_commit_callbacks(execute=True):
        response = page_client(manager).post(
            reverse("serving:send_to_queue", args=[project.slug]),
            {"order": "newest", "limit": 50, "top_class": "cat", "since": since},
        )

    # Then only those (3 and 9 hours old) were sent
    assert response.status_code == 302
    sent = PredictionLog.objects.exclude(queued_at=None)
    assert sorted(round((timezone.now() - log.created_at).total_seconds() / 3600) for log in sent) == [3, 9]
    assert {log.top_class for log in sent} == {"cat"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"order": "lowest_confidence", "limit": 0}, "greater than or equal to 1"),
        ({"order": "most_confident", "limit": 5}, "Select a valid choice"),
        ({"order": "random", "limit": 5, "since": "yesterday"}, "Enter a valid date/time"),
        ({"order": "random", "limit": 5, "since": "2026-12-02 10:00", "until": "2026-12-01 10:00"}, "window is empty"),
        ({"order": "random", "limit": 5, "top_class": "horse"}, "No class &#x27;horse&#x27; in this project"),
        ({"order": "random", "limit": 5, "top_class": "cat", "version": 9}, "No production images match"),
    ],
)
def test_bad_filters_are_refused_and_change_nothing(production, data, message):
    project, _, manager = production
    response = page_client(manager).post(reverse("serving:send_to_queue", args=[project.slug]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    # ... and the class field offers the project's classes
    assert re.search(r"<input [^>]*name=\"top_class\"[^>]*list=\"class-paths\"", response.content.decode())
    assert '<datalist id="class-paths"><option value="cat"></option><option value="dog"></option></datalist>' in (
        response.content.decode()
    )
    assert not Job.objects.filter(project=project).exists()
    assert not PredictionLog.objects.exclude(queued_at=None).exists()


def test_only_a_manager_sends(production, member_of):
    project, _, _ = production
    for role in (Role.ML_ENGINEER, Role.REVIEWER):
        client = page_client(member_of(project, role))
        assert client.post(reverse("serving:send_to_queue", args=[project.slug]), {"limit": 3}).status_code == 403
        api = client.post(f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 3})
        assert api.status_code == 403
    assert not Job.objects.filter(project=project).exists()


def test_predictions_without_kept_images_cannot_be_sent(project_factory, member_of):
    project = project_factory()
    log_predictions(project, [(1, "cat", 0.1)] * 3, keep_images=False)
    response = page_client(member_of(project, Role.MANAGER)).post(
        f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 3}
    )
    assert response.status_code == 400
    assert "still kept" in response.json()["detail"][0]
    assert not Job.objects.filter(project=project).exists()


def test_the_api_sends_a_random_sample_and_returns_the_job(production, django_capture_on_commit_callbacks):
    project, _, manager = production
    url = f"/api/projects/{project.slug}/monitoring/send-to-queue/"
    with django_capture_on_commit_callbacks(execute=True):
        response = page_client(manager).post(
            url, {"order": "random", "limit": 4, "seed": 7}, content_type="application/json"
        )
    assert response.status_code == 202
    job = response.json()
    assert job["kind"] == "import"
    assert job["params"]["send_to_queue"] == {"source": "manual", "order": "random", "predictions": 4,
                                              "day": f"{timezone.now():%Y-%m-%d}"}  # fmt: skip
    assert Item.objects.filter(project=project, sha256__in=sent_shas(project)).count() == 4
    bad = page_client(manager).post(url, {"order": "random", "limit": 5000}, content_type="application/json")
    assert bad.status_code == 400
    assert "limit" in bad.json()


def test_the_command_sends_by_class_and_refuses_bad_input(production, capsys, django_capture_on_commit_callbacks):
    project, _, _ = production
    with django_capture_on_commit_callbacks(execute=True):
        call_command("send_to_queue", project.slug, "--lowest-confidence", "2", "--class", "cat")
    out = capsys.readouterr().out
    assert "2 production images sent to the labeling queue of prod: import job" in out
    sent = PredictionLog.objects.exclude(queued_at=None)
    assert [log.top_class for log in sent] == ["cat", "cat"]
    assert Item.objects.filter(project=project, sha256__in=sent_shas(project)).count() == 2

    with pytest.raises(CommandError, match="No class 'horse' in this project"):
        call_command("send_to_queue", project.slug, "--random", "2", "--class", "horse")
    with pytest.raises(CommandError, match="Not a date"):
        call_command("send_to_queue", project.slug, "--random", "2", "--since", "last week")
    with pytest.raises(CommandError, match="No project"):
        call_command("send_to_queue", "nope", "--random", "2")
    assert PredictionLog.objects.exclude(queued_at=None).count() == 2


def test_the_daily_task_sends_the_days_least_confident_once(production, django_capture_on_commit_callbacks):
    # Given a manager who asks for 2 images a day (predictions older than a day do not count)
    project, logs, manager = production
    response = page_client(manager).post(reverse("serving:auto_queue", args=[project.slug]), {"per_day": 2})
    assert response.status_code == 302

    # When the daily task runs, twice
    with django_capture_on_commit_callbacks(execute=True):
        first = predictions_auto_queue_task()
        second = predictions_auto_queue_task()

    # Then the two least-confident predictions of the last day went to the queue, once
    assert len(first["jobs"]) == 1
    assert second["jobs"] == []
    recent = [log for log in logs if timezone.now() - log.created_at < timedelta(days=1)]
    expected = {log.uid for log in sorted(recent, key=lambda log: log.confidence)[:2]}
    assert {log.uid for log in PredictionLog.objects.exclude(queued_at=None)} == expected
    assert Item.objects.filter(project=project, sha256__in=sent_shas(project)).count() == 2


def test_a_prediction_served_in_process_can_be_sent_to_the_queue(
    served_project, api_key, predict, member_of, django_capture_on_commit_callbacks
):
    # Given a prediction made through the prediction service (in process), its image kept
    project, _, _, _ = served_project
    _, token = api_key(project)
    status, _ = predict(project.slug, token, images=[png_bytes(70_001, size=(48, 48))])
    assert status == 200
    assert predict.log.flush() == 1

    # When the manager sends it to the queue through the API
    with django_capture_on_commit_callbacks(execute=True):
        response = page_client(member_of(project, Role.MANAGER)).post(
            f"/api/projects/{project.slug}/monitoring/send-to-queue/", {"limit": 1}
        )

    # Then the served image is an item of the project, linked by its sha256
    assert response.status_code == 202
    log = PredictionLog.objects.get(project=project)
    assert Item.objects.get(project=project, sha256=log.image_sha256).original_name == (
        f"production/{log.created_at:%Y-%m-%d}/{log.uid}.png"
    )


@pytest.fixture
def drifted(production, settings, tmp_path):
    """production with version 1 active and its 12 predictions embedded: 9 near the labeled images, 3 (`far`) far
    off -> (project, logs, manager, far, save_reference(model_file=...)), the last a drift check's cached reference
    near the 9."""
    import numpy as np

    from serving.services.drift_reference import _cache_path, _cache_save
    from training.models import ModelVersion, TrainingRun

    project, logs, manager = production
    settings.LABELLOOP_DATA_ROOT = tmp_path
    run = TrainingRun.objects.create(project=project, status="succeeded")
    version = ModelVersion.objects.create(project=project, run=run, number=1, active=True)
    rng = np.random.default_rng(0)
    far = {logs[2].pk, logs[5].pk, logs[9].pk}
    for log in logs:
        log.embedding = rng.normal(6.0 if log.pk in far else 0.0, 1.0, 16).astype(np.float16).tobytes()
    PredictionLog.objects.bulk_update(logs, ["embedding"])

    def save_reference(model_file: str = "model.onnx") -> None:
        reference = rng.normal(0.0, 1.0, (50, 16)).astype(np.float16)
        _cache_path(version.pk).parent.mkdir(parents=True, exist_ok=True)
        _cache_save(_cache_path(version.pk), dict(enumerate(reference, start=1)), model_file)

    return project, logs, manager, far, save_reference


def test_most_drifted_sends_the_images_least_like_the_labeled_ones_once_a_drift_check_has_run(
    drifted, django_capture_on_commit_callbacks
):
    # Given version 1 active, its 12 production predictions with embeddings: 9 near the labeled images, 3 far off
    project, _logs, manager, far, save_reference = drifted
    client = page_client(manager)
    url = reverse("serving:send_to_queue", args=[project.slug])

    # When the manager asks for the most drifted before any drift check: refused with the reason, nothing sent
    response = client.post(url, {"order": "most_drifted", "limit": 3})
    assert "run a drift check first" in response.content.decode()
    assert not sent_shas(project)

    # When a drift check has embedded the labeled images (its cache) and the manager asks again
    save_reference()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"order": "most_drifted", "limit": 3})

    # Then exactly the three far-off images went to the queue
    assert set(PredictionLog.objects.exclude(queued_at=None).values_list("pk", flat=True)) == far


def test_most_drifted_compares_only_predictions_answered_by_the_file_that_embedded_the_reference(
    drifted, django_capture_on_commit_callbacks
):
    # Given the 3 far-off predictions answered in FP32 and the 9 near ones in INT8 (after a switch), and the
    # reference of the last drift check embedded by the INT8 file
    project, logs, manager, far, save_reference = drifted
    for log in logs:
        log.model_file = "model.onnx" if log.pk in far else "model.int8.vnni.onnx"
    PredictionLog.objects.bulk_update(logs, ["model_file"])
    save_reference("model.int8.vnni.onnx")

    # When the manager sends the 3 most drifted
    with django_capture_on_commit_callbacks(execute=True):
        page_client(manager).post(
            reverse("serving:send_to_queue", args=[project.slug]), {"order": "most_drifted", "limit": 3}
        )

    # Then 3 INT8 answers went, none of the FP32 ones (their embeddings come from another graph)
    sent = set(PredictionLog.objects.exclude(queued_at=None).values_list("pk", flat=True))
    assert len(sent) == 3
    assert not sent & far


def test_sent_images_come_before_the_strategys_picks_in_the_order_sent_and_never_in_the_holdout(
    production, item_factory, member_of, django_capture_on_commit_callbacks
):
    # Given a project that keeps most new images for its holdout, and a scored pool: a strategy batch up front
    project, _, manager = production
    project.holdout_fraction = 0.9
    project.save(update_fields=["holdout_fraction"])
    for k in range(10):
        item_factory(project=project, priority=1.5 + k / 100)

    # When the manager sends the 5 least-confident production images
    with django_capture_on_commit_callbacks(execute=True):
        page_client(manager).post(
            reverse("serving:send_to_queue", args=[project.slug]), {"order": "lowest_confidence", "limit": 5}
        )

    # Then they are in the training split (picked for being hard, as the strategy's picks are, not at random) and
    # head the queue, least confident first, before the strategy's batch; the annotator gets the first of them
    sent = Item.objects.filter(project=project, sha256__in=sent_shas(project))
    assert sorted(set(sent.values_list("split", flat=True))) == ["train"]
    by_log = {log.image_sha256: log.confidence for log in PredictionLog.objects.exclude(queued_at=None)}
    head = Item.objects.filter(project=project, state=ItemState.UNLABELED).order_by("-priority", "id")[:5]
    assert [round(by_log.get(item.sha256, 0), 2) for item in head] == [0.05, 0.1, 0.15, 0.2, 0.25]
    assert item_claim_next(project=project, user=member_of(project, Role.ANNOTATOR)).sha256 == head[0].sha256

"""Drift checks through the product's path: predictions served over the prediction service's WSGI app and logged,
then the hourly task (or `manage.py drift_check`) compares them with a random sample of the project's images embedded
by the same ONNX model, and stores a DriftReport the Monitoring page and the alerts read."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from PIL import Image

from labeling.models import LabelSource, ResolvedLabel, Split
from serving.models import DriftReport, PredictionLog
from serving.selectors.alerts import DRIFT, project_alerts
from serving.services import drift
from serving.tasks import drift_check_task
from tests.factories import png_bytes
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def noise_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def labeled_project(served_project, item_factory, api_key):
    """served_project (active v1 exported to ONNX) with 30 labeled train images, 1 labeled holdout image and an
    API key; returns (project, token)."""
    project, classes, items, _version = served_project
    items = items + [item_factory(project=project) for _ in range(24)]
    items.append(item_factory(project=project, split=Split.HOLDOUT))
    for i, item in enumerate(items):
        ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT).classes.add(classes[i % 3])
    _, token = api_key(project)
    return project, token


def serve(predict, project, token, images: list[bytes]) -> None:
    for start in range(0, len(images), 50):
        status, payload = predict(project.slug, token, images=images[start : start + 50])
        assert status == 200, payload
    predict.log.flush()


def test_the_hourly_task_reports_each_window_of_new_predictions_once(labeled_project, predict, monkeypatch):
    # Given a project whose model answered 60 requests for images like its labeled ones (a check is due at 40)
    monkeypatch.setattr(drift, "MIN_NEW_PREDICTIONS", 40)
    project, token = labeled_project
    serve(predict, project, token, [png_bytes(50_000 + i) for i in range(60)])

    # When the periodic task runs
    result = drift_check_task.delay().get()

    # Then one finished report compares the 60 predictions with the project's 31 images (holdout included)
    report = DriftReport.objects.get(project=project)
    assert result == {"reports": [report.pk], "failed_projects": [], "swept": 0}
    assert (report.status, report.version_number, report.n_production, report.n_reference) == ("done", 1, 60, 31)
    assert 0 < report.p_value <= 1
    assert report.statistic >= 0
    assert (report.threshold, report.permutations, report.progress) == (0.01, 200, 1.0)
    assert report.drifted == (report.p_value < 0.01)
    logs = PredictionLog.objects.filter(project=project)
    assert report.window_start == min(r.created_at for r in logs)
    assert report.window_end == max(r.created_at for r in logs)
    assert report.low_confidence_share == pytest.approx(np.mean([r.confidence < 0.5 for r in logs]))

    # And a second delivery with no new predictions writes nothing; 40 more predictions make the next window,
    # the latest 100 (rolling, up to WINDOW_MAX)
    assert drift_check_task.delay().get() == {"reports": [], "failed_projects": [], "swept": 0}
    serve(predict, project, token, [png_bytes(60_000 + i) for i in range(40)])
    drift_check_task.delay().get()
    assert list(DriftReport.objects.values_list("n_production", flat=True)) == [100, 60]


def test_inputs_unlike_the_training_images_are_flagged_and_raise_a_banner(labeled_project, predict, member_of):
    # Given a model trained on flat-colour images that now receives 60 images of noise
    project, token = labeled_project
    serve(predict, project, token, [noise_png(i) for i in range(60)])

    # When a drift check runs on demand
    report = drift.drift_check_run(project=project)

    # Then the shift is flagged at the smallest p-value 200 permutations allow, and the project shows the alert
    assert report.drifted
    assert report.p_value == pytest.approx(1 / 201)
    (alert,) = [a for a in project_alerts(project) if a.kind == DRIFT]
    assert "drifted" in alert.message
    assert "p = 0.00498 < 0.01" in alert.message
    assert "60 predictions" in alert.message


def test_the_command_checks_now_and_refuses_too_few_predictions(
    labeled_project, predict, django_capture_on_commit_callbacks
):
    project, token = labeled_project
    # Given 10 logged predictions: the command says how many it needs and stores nothing
    serve(predict, project, token, [png_bytes(70_000 + i) for i in range(10)])
    with pytest.raises(CommandError, match="10 predictions of version 1 carry an embedding; a drift check needs 30"):
        call_command("drift_check", project.slug, verbosity=0)
    assert not DriftReport.objects.exists()
    with pytest.raises(CommandError, match="No project with slug 'nope'"):
        call_command("drift_check", "nope", verbosity=0)

    # When 25 more arrive, the command runs and prints the report
    serve(predict, project, token, [png_bytes(71_000 + i) for i in range(25)])
    out = io.StringIO()
    call_command("drift_check", project.slug, verbosity=0, stdout=out)
    printed = json.loads(out.getvalue())
    assert printed["n_production"] == 35
    assert printed["n_reference"] == 31
    assert printed["report"] == DriftReport.objects.get(status="done").pk

    # And the Monitoring page's request runs the same check on a worker (not due hourly: only 35 predictions)
    with django_capture_on_commit_callbacks(execute=True):
        drift.drift_check_request(project=project)
    assert list(DriftReport.objects.values_list("n_production", "status")) == [(35, "done"), (35, "done")]


@pytest.fixture
def unexported(labeled_project, model_project):
    """labeled_project with 40 predictions logged under an active v2 that was never exported (a drift check cannot
    embed the labeled images with it); returns the project."""
    from tests.exports.models import make_model_version

    project, _token = labeled_project
    _, classes, items = model_project
    ModelVersion.objects.filter(project=project).update(active=False)
    make_model_version(project=project, classes=classes, items=items, number=2, active=True)
    rows = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float16)
    PredictionLog.objects.bulk_create(
        PredictionLog(uid=f"00000000-0000-0000-0000-{i:012d}", project=project, created_at=timezone.now(),
                      version_number=2, top_class="cat", confidence=0.9, margin=0.5, embedding=rows[i].tobytes())
        for i in range(40)
    )  # fmt: skip
    return project


def test_a_version_without_an_onnx_export_fails_with_the_reason_on_its_report(unexported):
    # Given predictions logged under an active v2 that was never exported
    project = unexported

    # When the check runs, it fails, says why, and the report keeps the reason (no alert)
    with pytest.raises(drift.DriftCheckError, match="version 2 has no ONNX export"):
        drift.drift_check_run(project=project)
    report = DriftReport.objects.get()
    assert report.status == "failed"
    assert "export it on the model exports page" in report.error
    assert project_alerts(project) == []


def test_a_check_the_button_asked_for_that_fails_says_why_on_the_page_and_in_the_api(
    unexported, member_of, client, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    from labeling.models import Role

    # Given 40 predictions of an active v2 that was never exported (its check cannot embed the labeled images)
    project = unexported
    reviewer = member_of(project, Role.REVIEWER)
    client.force_login(reviewer)

    # When the reviewer presses "Check drift now" and the worker's check fails at once
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("serving:monitoring_drift_check", args=[project.slug]))
    assert DriftReport.objects.get().status == "failed"

    # Then the page they land on says the check failed and why, instead of showing nothing (no report, no polling)
    page = client.get(response["Location"]).content.decode()
    assert "The last drift check failed" in page
    assert "version 2 has no ONNX export" in page
    assert 'hx-trigger="every 2s"' not in page
    # ... and so does the API's newest report
    (latest,) = client.get(f"/api/projects/{project.slug}/monitoring/").json()["drift"]
    assert latest["status"] == "failed"
    assert "version 2 has no ONNX export" in latest["error"]


def test_a_check_embeds_its_reference_with_the_onnx_file_that_answered_not_the_workers_setting(
    labeled_project, predict, settings, monkeypatch
):
    # Given a project served in FP32 for 10 images, then by an INT8 service for 40 more (the export holds both)
    from serving import wsgi_predict
    from serving.runtime.registry import ModelRegistry
    from serving.services.drift_reference import reference_cached
    from training.ml.export_files import int8_files_for_this_cpu

    project, token = labeled_project
    serve(predict, project, token, [png_bytes(50_000 + i) for i in range(10)])
    settings.LABELLOOP_SERVING_PRECISION = "int8"
    monkeypatch.setattr(wsgi_predict, "registry", ModelRegistry(reload_seconds=0))  # the INT8 service's process
    serve(predict, project, token, [png_bytes(60_000 + i) for i in range(40)])
    int8_file = int8_files_for_this_cpu()[0]
    logged = PredictionLog.objects.filter(project=project).values_list("model_file", flat=True)
    assert sorted(set(logged)) == sorted({"model.onnx", int8_file})

    # When a worker whose own setting is FP32 checks drift
    settings.LABELLOOP_SERVING_PRECISION = "fp32"
    report = drift.drift_check_run(project=project)

    # Then it compares the 40 INT8 answers with a reference the same INT8 file embedded, and says which file
    assert (report.status, report.model_file, report.n_production, report.n_reference) == ("done", int8_file, 40, 31)
    assert reference_cached(version_pk=report.project.model_versions.get(number=1).pk)[1] == int8_file


def test_the_monitoring_pages_button_checks_drift_now_or_says_why_not(
    labeled_project, predict, member_of, client, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    from labeling.models import Role

    project, token = labeled_project
    client.force_login(member_of(project, Role.REVIEWER))
    url = reverse("serving:monitoring_drift_check", args=[project.slug])
    page_url = reverse("serving:monitoring", args=[project.slug])
    assert "Check drift now" in client.get(page_url).content.decode()

    # Given 10 logged predictions: pressing the button says why no check runs, and asks a worker for nothing
    serve(predict, project, token, [png_bytes(80_000 + i) for i in range(10)])
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(url, follow=True).content.decode()
    assert "No drift check: 10 predictions of version 1 carry an embedding; a drift check needs 30" in page
    assert not DriftReport.objects.exists()

    # When 25 more arrive and the reviewer presses it
    serve(predict, project, token, [png_bytes(81_000 + i) for i in range(25)])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)

    # Then a worker checked the 35, and the page shows the report with the file that answered them
    assert response.status_code == 302
    assert "drift=requested" in response["Location"]
    report = DriftReport.objects.get()
    assert (report.status, report.n_production, report.model_file) == ("done", 35, "model.onnx")
    page = client.get(response["Location"]).content.decode()
    assert "Drift check asked for" in page
    assert '<span class="muted small model-file">model.onnx</span>' in page
    # ... and the drift card, asked for again, no longer waits (its report is there)
    since = response["Location"].split("since=")[1].split("#")[0]
    card = client.get(reverse("serving:monitoring_drift", args=[project.slug]) + f"?since={since}").content.decode()
    assert "hx-trigger" not in card
    assert "Check drift now" in card

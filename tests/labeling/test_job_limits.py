"""Bounded exports: identical requests share one job, a user and a project have a ceiling on queued work (HTTP 429),
export files expire and are deleted by a housekeeping task, and a flood of exports never delays the reaper.

The attack this answers: one manager token created 2,445 export jobs in 7.5 minutes, and the reaping of a crashed
training run waited almost 6 minutes behind them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from labeling.services.exports import export_storage
from tests.conftest import wait_for
from tests.factories import api_client, png_bytes, upload, zip_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(project_factory, item_factory, label_class_factory, member_of):
    """12 labeled items in 2 classes, and a trained model version (no torch needed to start its jobs)."""
    from training.models import ModelVersion

    project = project_factory(slug="birds", name="Birds")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["heron", "crane"])]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for i in range(12):
        annotation_create(item=item_factory(project=project), user=annotator, class_ids=[classes[i % 2].pk])
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="test", class_ids=[c.pk for c in classes]
    )
    return project


def export_url(project) -> str:
    return f"/api/projects/{project.slug}/exports/dataset/"


def a_zip(*seeds: int) -> SimpleUploadedFile:
    """The same seeds give the same bytes, as a user uploading the same file twice would send."""
    return upload("batch.zip", zip_of({f"{seed}.png": png_bytes(seed) for seed in seeds}))


# ---- coalescing ------------------------------------------------------------------------------------------------


def test_the_same_export_asked_twice_returns_the_queued_job_and_different_filters_get_their_own(project, member_of):
    # Given an ML engineer with a token (no worker: what they start stays queued)
    client = api_client(member_of(project, Role.ML_ENGINEER))

    # When they ask for the same CSV export twice, and once with other filters
    first = client.post(export_url(project), {"format": "csv", "val_fraction": 0.2}, format="json")
    again = client.post(export_url(project), {"val_fraction": 0.2, "format": "csv"}, format="json")
    other = client.post(export_url(project), {"format": "csv", "only_agreed": True}, format="json")

    # Then the second answer is the first job, said so; the third is a job of its own
    assert first.status_code == 202
    assert first.json()["coalesced"] is False
    assert again.status_code == 200
    assert again.json()["coalesced"] is True
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "queued"
    assert other.status_code == 202
    assert other.json()["id"] != first.json()["id"]
    assert Job.objects.filter(kind=JobKind.EXPORT_DATASET).count() == 2


def test_another_member_asking_for_a_running_export_gets_it_and_a_finished_one_is_not_reused(project, member_of):
    engineer = api_client(member_of(project, Role.ML_ENGINEER, "eng"))
    manager = api_client(member_of(project, Role.MANAGER, "boss"))
    running = engineer.post(export_url(project), {"format": "jsonl"}, format="json").json()
    Job.objects.filter(pk=running["id"]).update(status=JobStatus.RUNNING)

    same = manager.post(export_url(project), {"format": "jsonl"}, format="json")
    assert same.status_code == 200
    assert same.json()["id"] == running["id"]

    Job.objects.filter(pk=running["id"]).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    fresh = manager.post(export_url(project), {"format": "jsonl"}, format="json")
    assert fresh.status_code == 202
    assert fresh.json()["id"] != running["id"]


def test_model_exports_and_inference_coalesce_on_version_and_input_bytes(project, member_of):
    client = api_client(member_of(project, Role.ML_ENGINEER))
    model_url = f"/api/projects/{project.slug}/models/1/export/"
    inference_url = f"/api/projects/{project.slug}/inference/"

    exports = [client.post(model_url) for _ in range(3)]
    runs = [client.post(inference_url, {"file": a_zip(1, 2)}, format="multipart") for _ in range(2)]
    other = client.post(inference_url, {"file": a_zip(3)}, format="multipart")

    assert [r.status_code for r in exports] == [202, 200, 200]
    assert len({r.json()["id"] for r in exports}) == 1
    assert [r.status_code for r in runs] == [202, 200], runs[0].content
    assert runs[1].json()["id"] == runs[0].json()["id"]
    assert other.status_code == 202
    assert Job.objects.filter(kind=JobKind.EXPORT_MODEL).count() == 1
    assert Job.objects.filter(kind=JobKind.INFERENCE).count() == 2


# ---- limits ----------------------------------------------------------------------------------------------------


def test_a_token_flooding_distinct_exports_is_refused_with_429_past_the_per_user_limit(project, member_of, settings):
    # Given the default limits and one manager token
    assert settings.LABELLOOP_MAX_QUEUED_JOBS_PER_USER == 5
    client = api_client(member_of(project, Role.MANAGER))

    # When it asks for 200 different exports (every val_fraction another one), as fast as it can
    answers = [
        client.post(export_url(project), {"format": "csv", "val_fraction": round(0.001 * n, 3)}, format="json")
        for n in range(200)
    ]

    # Then 5 jobs exist, and every later request got 429 with a message that says what to do
    codes = [a.status_code for a in answers]
    assert codes[:5] == [202] * 5
    assert set(codes[5:]) == {429}
    assert Job.objects.count() == 5
    detail = answers[-1].json()["detail"]
    assert "You already have 5 exports or inference jobs queued or running (at most 5)" in detail
    assert "Wait for one to finish" in detail

    # And once one finishes, the next is accepted
    Job.objects.filter(pk=answers[0].json()["id"]).update(status=JobStatus.SUCCEEDED)
    assert client.post(export_url(project), {"format": "hf"}, format="json").status_code == 202


def test_the_per_project_limit_holds_across_members_and_kinds(project, member_of, settings):
    settings.LABELLOOP_MAX_QUEUED_JOBS_PER_USER = 4
    settings.LABELLOOP_MAX_QUEUED_JOBS_PER_PROJECT = 6
    first = api_client(member_of(project, Role.ML_ENGINEER, "first"))
    second = api_client(member_of(project, Role.ML_ENGINEER, "second"))
    for n in range(3):
        answer = first.post(export_url(project), {"format": "csv", "val_fraction": n / 10}, format="json")
        assert answer.status_code == 202
    assert first.post(f"/api/projects/{project.slug}/models/1/export/").status_code == 202  # a 4th, another kind
    assert first.post(export_url(project), {"format": "hf"}, format="json").status_code == 429  # user limit
    assert second.post(export_url(project), {"format": "jsonl"}, format="json").status_code == 202
    assert second.post(export_url(project), {"format": "hf"}, format="json").status_code == 202

    refused = second.post(f"/api/projects/{project.slug}/inference/", {"file": a_zip(5)}, format="multipart")

    assert refused.status_code == 429
    assert (
        "This project already has 6 exports or inference jobs queued or running (at most 6)" in refused.json()["detail"]
    )
    assert Job.objects.count() == 6
    # An identical request is still answered with its job: coalescing comes before the limit.
    assert second.post(export_url(project), {"format": "hf"}, format="json").status_code == 200


def test_the_export_page_says_an_export_is_already_queued_and_shows_the_limit_error(project, member_of, settings):
    settings.LABELLOOP_MAX_QUEUED_JOBS_PER_USER = 2
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    url = reverse("labeling:exports", args=[project.slug])

    client.post(url, {"format": "csv", "val_fraction": "0.1"})
    again = client.post(url, {"format": "csv", "val_fraction": "0.1"}, follow=True)
    job = Job.objects.get()
    assert f"The same export is already queued: export #{job.number}." in again.content.decode()

    client.post(url, {"format": "jsonl", "val_fraction": "0.1"})
    refused = client.post(url, {"format": "hf", "val_fraction": "0.1"})
    assert refused.status_code == 429
    assert "You already have 2 exports or inference jobs queued or running (at most 2)" in refused.content.decode()
    assert Job.objects.count() == 2


def test_the_model_export_page_says_the_export_is_already_queued_and_refuses_past_the_limit(
    project, member_of, settings
):
    settings.LABELLOOP_MAX_QUEUED_JOBS_PER_PROJECT = 1
    client = Client()
    client.force_login(member_of(project, Role.ML_ENGINEER))
    start = reverse("training:model_export_start", args=[project.slug, 1])

    client.post(start)
    page = client.post(start, follow=True).content.decode()
    job = Job.objects.get()
    assert f"The export of v1 is already queued (job #{job.number})." in page

    answer = client.post(reverse("training:model_exports", args=[project.slug]), {"file": a_zip(7)})
    assert answer.status_code == 429
    assert "This project already has 1 exports or inference jobs queued or running (at most 1)" in (
        answer.content.decode()
    )
    assert Job.objects.count() == 1


# ---- expiry ----------------------------------------------------------------------------------------------------


def test_an_export_past_its_ttl_is_deleted_by_the_housekeeping_task_and_its_download_is_gone(
    project, member_of, django_capture_on_commit_callbacks, settings
):
    from labeling.tasks import export_files_expire_task

    # Given two finished exports (run by the eager worker), one finished 73 hours ago
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    api = api_client(member_of(project, Role.ML_ENGINEER, "eng"))
    page_url = reverse("labeling:exports", args=[project.slug])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(page_url, {"format": "csv", "val_fraction": "0.1"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(page_url, {"format": "jsonl", "val_fraction": "0.1"})
    old, recent = Job.objects.order_by("pk")
    assert old.status == recent.status == JobStatus.SUCCEEDED, (old.message, recent.message)
    Job.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(hours=73))
    old_key = old.result["files"][0]
    storage = export_storage()
    assert storage.exists(old_key)
    download = reverse("labeling:export_download", args=[project.slug, old.pk])
    api_download = f"/api/projects/{project.slug}/jobs/{old.pk}/download/"

    # Then past its time the download is gone (410) even before the clean-up ran
    assert client.get(download).status_code == 410
    assert api.get(api_download).status_code == 410

    # When the periodic clean-up runs
    outcome = export_files_expire_task.delay().get()

    # Then the old file is deleted, the job says so on the page and in the API, and the recent one is untouched
    assert outcome["expired"] == 1
    assert not storage.exists(old_key)
    assert storage.exists(recent.result["files"][0])
    page = client.get(page_url).content.decode()
    assert "Expired: the file was deleted after 72 hours" in page
    assert download not in page
    assert reverse("labeling:export_download", args=[project.slug, recent.pk]) in page
    gone = client.get(download)
    assert gone.status_code == 410
    assert "expired" in gone.content.decode()
    answer = api.get(api_download)
    assert answer.status_code == 410
    assert "expired and was deleted after 72 hours" in answer.json()["detail"]
    body = api.get(f"/api/projects/{project.slug}/jobs/{old.pk}/").json()
    assert body["download_url"] is None
    assert body["result"]["expired_at"]
    assert client.get(reverse("labeling:export_download", args=[project.slug, recent.pk])).status_code == 200
    # a second run changes nothing
    assert export_files_expire_task.delay().get()["expired"] == 0


def test_an_export_whose_task_was_lost_is_failed_after_the_ttl_and_stops_counting(project, member_of, settings):
    from labeling.tasks import export_files_expire_task

    settings.LABELLOOP_MAX_QUEUED_JOBS_PER_USER = 1
    client = api_client(member_of(project, Role.ML_ENGINEER))
    lost = client.post(export_url(project), {"format": "csv"}, format="json").json()
    assert client.post(export_url(project), {"format": "hf"}, format="json").status_code == 429
    Job.objects.filter(pk=lost["id"]).update(created_at=timezone.now() - timedelta(hours=80))

    assert export_files_expire_task.delay().get()["abandoned"] == 1

    job = Job.objects.get(pk=lost["id"])
    assert job.status == JobStatus.FAILED
    assert "Start it again" in job.message
    assert client.post(export_url(project), {"format": "csv"}, format="json").status_code == 202  # not the dead job


def test_the_clean_up_runs_on_a_schedule_on_the_housekeeping_queue(settings):
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("export_files_expire_task")]
    assert len(entries) == 1
    assert entries[0]["options"]["queue"] == "housekeeping"
    assert settings.CELERY_TASK_ROUTES[entries[0]["task"]]["queue"] == "housekeeping"
    assert entries[0]["schedule"] <= 3600


# ---- a flood of exports and the reaper, with real workers ------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_flood_of_exports_does_not_delay_the_reaping_of_a_crashed_run(
    project, member_of, start_worker, settings, project_factory
):
    from training.models import RunStatus, TrainingRun

    # Given the housekeeping worker with beat (a tick every second), and members who flood the export endpoint:
    # 3 tokens x 60 different exports
    housekeeping = start_worker(
        queues="housekeeping",
        name="housekeeping",
        beat=True,
        extra_env={"LABELLOOP_SCHEDULER_INTERVAL": "1", "LABELLOOP_RUN_HEARTBEAT_TIMEOUT": "5"},
    )
    clients = [api_client(member_of(project, Role.ML_ENGINEER, f"eng{n}")) for n in range(3)]
    codes = [
        client.post(
            export_url(project), {"format": "csv", "val_fraction": round(0.01 * n, 2)}, format="json"
        ).status_code
        for n in range(60)
        for client in clients
    ]
    assert codes.count(202) == settings.LABELLOOP_MAX_QUEUED_JOBS_PER_PROJECT == 10
    assert codes.count(200) + codes.count(429) == 170  # the same export asked by two members is one job
    assert codes.count(429) > 150
    assert Job.objects.count() == 10
    # and the default worker, on its own, working through them (each export takes 2 s more than it would)
    default = start_worker(queues="default", name="default", extra_env={"LABELLOOP_DEBUG_EXPORT_SLEEP": "2"})

    # When a training run of another project crashes (its heartbeat stopped a minute ago)
    crashed = TrainingRun.objects.create(
        project=project_factory(name="Other"),
        status=RunStatus.RUNNING,
        started_at=timezone.now() - timedelta(minutes=5),
        heartbeat_at=timezone.now() - timedelta(minutes=1),
        worker="gpu@dead-host",
    )
    reported = timezone.now()

    # Then the tick reaps it within seconds, while most of the exports are still waiting on the default queue
    wait_for(
        lambda: TrainingRun.objects.get(pk=crashed.pk).status == RunStatus.FAILED,
        20,
        what=f"the reaper; housekeeping worker:\n{housekeeping.output()[-2000:]}",
    )
    reaped_after = (timezone.now() - reported).total_seconds()
    waiting = Job.objects.filter(kind=JobKind.EXPORT_DATASET, status=JobStatus.QUEUED).count()
    assert reaped_after < 10
    assert waiting >= 5, f"exports already done: {waiting} still queued"
    assert "Worker lost" in TrainingRun.objects.get(pk=crashed.pk).error
    assert "dataset_export_task[" not in housekeeping.output()
    assert "training_scheduler_tick_task[" not in default.output()

    # And the exports all finish on the default worker afterwards
    wait_for(
        lambda: not Job.objects.filter(kind=JobKind.EXPORT_DATASET, status__in=["queued", "running"]).exists(),
        90,
        what=f"the exports; default worker:\n{default.output()[-2000:]}",
    )
    assert Job.objects.filter(kind=JobKind.EXPORT_DATASET, status=JobStatus.SUCCEEDED).count() == 10

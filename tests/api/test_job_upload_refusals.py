"""A file refused at upload (over the size limit: never staged, the worker never sees it) is among the job's rejected
files from the first answer on: the 202 of an import of a 52.9 MiB file said "error_count": 0, "errors": [] and the
refusal showed only once the worker had run. It is listed once, before the worker, while it runs and after it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from tests.factories import png_bytes, token_client, upload
from tests.schema_conformance import assert_matches_schema

pytestmark = pytest.mark.django_db

REFUSED = {"name": "big_noise.png", "reason": "file is 2.0 KiB, over the 1.0 KiB limit", "kind": "over the size limit"}


@pytest.fixture
def small_limit(settings):
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 1024  # the 50 MiB limit at test size: a 2 KiB file is over it


@pytest.mark.usefixtures("small_limit")
@pytest.mark.parametrize("with_good_file", [False, True])
def test_a_file_over_the_limit_is_a_rejected_file_from_the_first_answer(
    project, member_of, with_good_file, django_capture_on_commit_callbacks
):
    # Given a manager uploads a file over the size limit (and maybe a good one beside it)
    manager = member_of(project, Role.MANAGER, "boss")
    client = token_client(manager)
    files = [upload("big_noise.png", b"\x89PNG" + b"\0" * 2044)]
    if with_good_file:
        files.append(upload("ok.png", png_bytes(1)))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        started = client.post(f"/api/projects/{project.slug}/imports/", {"files": files}, format="multipart")

    # Then the 202 and the job, still queued, name the refused file with its reason
    assert started.status_code == 202, started.content
    assert started.json()["status"] == JobStatus.QUEUED
    assert (started.json()["error_count"], started.json()["errors"]) == (1, [REFUSED])
    polled = client.get(started.json()["url"])
    assert (polled.json()["error_count"], polled.json()["errors"]) == (1, [REFUSED])
    assert_matches_schema(polled, "/api/projects/{slug}/jobs/{job_id}/")
    listed = client.get(f"/api/projects/{project.slug}/jobs/").json()["results"]
    assert (listed[0]["error_count"], listed[0]["errors"]) == (1, [REFUSED])
    # and so does the job's progress fragment on the import page
    browser = Client()
    browser.force_login(manager)
    fragment = browser.get(reverse("labeling:job_status", args=[project.slug, started.json()["id"]])).content.decode()
    assert "1 file rejected" in fragment
    assert "big_noise.png" in fragment

    # When the worker has run the job, the file is still listed once
    for send in queued:
        send()
    done = client.get(started.json()["url"]).json()
    assert done["status"] == JobStatus.SUCCEEDED
    assert (done["error_count"], done["errors"]) == (1, [REFUSED])
    assert done["result"]["imported"] == int(with_good_file)


def test_while_the_worker_runs_the_refused_files_are_not_counted_twice(project, member_of):
    # Given an import whose worker wrote its first progress: the refusals copied into errors, done counting them
    refused = [REFUSED, {"name": "huge.tif", "reason": REFUSED["reason"]}]
    job = Job.objects.create(
        project=project, kind=JobKind.IMPORT, status=JobStatus.RUNNING, done=3, total=40,
        params={"sources": [], "errors": refused},
        errors=[*refused, {"name": "notes.png", "reason": "a text file, not an image"}],
    )  # fmt: skip
    client = token_client(member_of(project, Role.REVIEWER))

    answer = client.get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()

    assert answer["error_count"] == 3
    assert [e["name"] for e in answer["errors"]] == ["big_noise.png", "huge.tif", "notes.png"]


def test_an_import_that_failed_before_reading_its_files_still_names_the_refused_ones(project, member_of):
    # Given the task queue was down: the job failed at once, before any worker copied the refusals
    job = Job.objects.create(
        project=project, kind=JobKind.IMPORT, status=JobStatus.FAILED, done=0, total=0,
        message="Could not queue the import: the task queue (Redis) is unreachable.",
        params={"sources": [], "errors": [REFUSED]},
    )  # fmt: skip
    answer = token_client(member_of(project, Role.MANAGER)).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    assert (answer["error_count"], answer["errors"]) == (1, [REFUSED])


def test_an_annotator_still_sees_no_rejected_files(project, member_of):
    job = Job.objects.create(project=project, kind=JobKind.IMPORT, params={"sources": [], "errors": [REFUSED]})
    annotator = member_of(project, Role.ANNOTATOR)
    answer = token_client(annotator).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    browser = Client()
    browser.force_login(annotator)
    fragment = browser.get(reverse("labeling:job_status", args=[project.slug, job.pk])).content.decode()
    assert not {"errors", "error_count"} & set(answer)
    assert "big_noise.png" not in fragment


def test_an_import_stored_without_kinds_is_answered_with_each_files_kind(project, member_of):
    # Given an import job written before its rejected files carried their kind (a finished job's stored errors)
    manager = member_of(project, Role.MANAGER, "boss")
    job = Job.objects.create(
        project=project,
        kind=JobKind.IMPORT,
        status=JobStatus.SUCCEEDED,
        done=2,
        total=2,
        created_by=manager,
        errors=[
            {"name": "big_noise.png", "reason": REFUSED["reason"]},
            {"name": "e.png", "reason": "empty file (0 bytes)"},
        ],
    )

    # When a script reads it, each file is listed with the kind the import page counts it under
    answer = token_client(manager).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    assert answer["errors"] == [REFUSED, {"name": "e.png", "reason": "empty file (0 bytes)", "kind": "empty file"}]

"""The import page's staging endpoints under retries: a batch sent twice under one key is staged once, a start asked
twice makes one job, and a file the browser did not send for its size is refused with its size and the limit."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from labeling.models import Item, Job, JobStatus, Role
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(project, member_of):
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    return client


def _batch(client, project, names: list[str], seeds: list[int], **fields):
    files = [SimpleUploadedFile(n.rsplit("/", 1)[-1], png_bytes(s)) for n, s in zip(names, seeds, strict=True)]
    return client.post(
        reverse("labeling:import_upload", args=[project.slug]), {"files": files, "names": names, **fields}
    )


def test_a_batch_sent_again_under_its_key_is_imported_once(project, manager_client, django_capture_on_commit_callbacks):
    # Given an upload whose second batch reached the server but whose answer was lost on the way back
    first = _batch(manager_client, project, ["a.png", "b.png"], [1, 2], batch="k1-0").json()
    token = first["token"]
    second = _batch(manager_client, project, ["c.png", "d.png"], [3, 4], token=token, batch="k1-1")
    assert second.json()["staged"] == 2

    # When the page sends that batch again under the same key
    again = _batch(manager_client, project, ["c.png", "d.png"], [3, 4], token=token, batch="k1-1")

    # Then it answers as the first time, and the import has each file once, no duplicate reported
    assert again.status_code == 200
    assert again.json() == {"token": token, "staged": 2}
    with django_capture_on_commit_callbacks(execute=True):
        started = manager_client.post(reverse("labeling:import_start", args=[project.slug]), {"token": token})
    assert started.status_code == 201
    job = Job.objects.get(project=project)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["duplicates"] == 0
    assert sorted(Item.objects.filter(project=project).values_list("original_name", flat=True)) == [
        "a.png", "b.png", "c.png", "d.png"
    ]  # fmt: skip


def test_a_start_asked_twice_makes_one_job(project, manager_client, django_capture_on_commit_callbacks):
    # Given a staged upload whose start request made a job but whose answer was lost
    token = _batch(manager_client, project, ["a.png"], [1], batch="k2-0").json()["token"]
    url = reverse("labeling:import_start", args=[project.slug])
    with django_capture_on_commit_callbacks(execute=True):
        assert manager_client.post(url, {"token": token}).status_code == 201

    # When the page asks again (the job has already run and removed its staging folder)
    again = manager_client.post(url, {"token": token, "retry": "1"})

    # Then it gets the same job's card, and there is still one job
    assert again.status_code == 200
    job = Job.objects.get(project=project)
    assert f"Import #{job.number}" in again.content.decode()


def test_a_file_not_sent_for_its_size_is_refused_with_its_size_and_the_limit(
    project, manager_client, settings, django_capture_on_commit_callbacks
):
    # Given a 1 KiB limit and a 2 KiB file the page did not send, named in the first batch with its size
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 1024
    token = _batch(
        manager_client, project, ["a.png"], [1], oversized=["scans/huge_scan.png"], oversized_size=["2048"]
    ).json()["token"]

    # When the import runs
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("labeling:import_start", args=[project.slug]), {"token": token})

    # Then its refusal says the size and the limit, as the server's own size refusal does
    job = Job.objects.get(project=project)
    reasons = {r["name"]: r["reason"] for r in job.errors}
    assert reasons["scans/huge_scan.png"] == "file is 2.0 KiB, over the 1.0 KiB limit; not uploaded"


def test_a_file_whose_name_holds_a_backslash_is_refused_alone_and_the_rest_imported(
    project, manager_client, django_capture_on_commit_callbacks
):
    # Given plain files picked on Linux, one of them named with a backslash (stop 55's tester: the whole upload
    # stopped, "0 of 2 files sent", in the API's words)
    odd = "<script>alert(1)<\\script>.png"
    answer = _batch(manager_client, project, ["plain_ok.png", odd], [1, 2], batch="k5-0")

    # When the batch is sent and the import started
    assert answer.status_code == 200, answer.content
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("labeling:import_start", args=[project.slug]), {"token": answer.json()["token"]})

    # Then the other file is imported, and the job names the odd one with why and what to do
    job = Job.objects.get(project=project)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert list(Item.objects.filter(project=project).values_list("original_name", flat=True)) == ["plain_ok.png"]
    assert job.result["rejected"] == 1
    [error] = job.errors
    assert error["name"] == odd
    assert "holds a backslash" in error["reason"]
    assert "rename it without one and upload it again" in error["reason"]

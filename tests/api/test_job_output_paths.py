"""A job's parameters in the jobs API name what is the user's (the files they sent by name, the options they chose),
never where the server keeps them: the 202 of an import, a job's detail and the jobs list showed every staged upload's
server path and the staging folder (/tmp/demo48/var/data/staging/2/1/upload-.../679d....zip) to managers and
reviewers."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from tests.factories import png_bytes, token_client, upload, zip_of
from tests.schema_conformance import assert_matches_schema

pytestmark = pytest.mark.django_db


def server_paths_in(text: str) -> list[str]:
    roots = (str(settings.LABELLOOP_DATA_ROOT), str(settings.MEDIA_ROOT), "/staging/", "/srv/", "/var/")
    return [root for root in roots if root in text]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REVIEWER, Role.ML_ENGINEER])
def test_an_uploaded_import_shows_file_names_not_server_paths(project, member_of, role,
                                                              django_capture_on_commit_callbacks):  # fmt: skip
    # Given a manager uploads a zip, two loose files from a dropped folder and a labels CSV through the API
    manager = token_client(member_of(project, Role.MANAGER, "boss"))
    files = [upload("photos.zip", zip_of({"cats/a.png": png_bytes(1)})), upload("b.png", png_bytes(2)),
             upload("c.png", png_bytes(3))]  # fmt: skip
    body = {"files": files, "names": ["photos.zip", "pets/dogs/b.png", "pets/dogs/c.png"],
            "csv": [upload("labels.csv", b"filename,label\nb.png,dogs\n")]}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        started = manager.post(f"/api/projects/{project.slug}/imports/", body, format="multipart")
    assert started.status_code == 202, started.content
    job = Job.objects.get(pk=started.json()["id"])
    assert job.params["staging_dir"].startswith(str(settings.LABELLOOP_DATA_ROOT))  # the worker still has its paths

    # When a member who sees job details reads the job, the project's job list and the job's progress fragment
    client = token_client(member_of(project, role)) if role != Role.MANAGER else manager
    detail = client.get(f"/api/projects/{project.slug}/jobs/{job.pk}/")
    listed = client.get(f"/api/projects/{project.slug}/jobs/")
    browser = Client()
    browser.force_login(member_of(project, role))
    fragment = browser.get(reverse("labeling:job_status", args=[project.slug, job.pk]))

    # Then neither the 202 nor any of them names a server folder, and the sources are the names the user gave
    assert detail.status_code == listed.status_code == fragment.status_code == 200
    for answer in (started, detail, listed, fragment):
        assert server_paths_in(answer.content.decode()) == [], answer.content.decode()[:500]
    params = detail.json()["params"]
    assert "staging_dir" not in params
    assert params["sources"] == [{"type": "zip", "name": "photos.zip"}, {"type": "file", "name": "pets/dogs/b.png"},
                                 {"type": "file", "name": "pets/dogs/c.png"}]  # fmt: skip
    assert params["csv"] == "labels.csv"
    assert params["labels_from_folders"] is False
    assert started.json()["params"] == listed.json()["results"][0]["params"] == params
    assert_matches_schema(detail, "/api/projects/{slug}/jobs/{job_id}/")
    assert_matches_schema(listed, "/api/projects/{slug}/jobs/")
    # and the import still did its work from those paths
    assert detail.json()["status"] == JobStatus.SUCCEEDED
    assert detail.json()["result"]["imported"] == 3


# Jobs as the services write them: a server-folder import (web page), an inference over an uploaded zip and one over a
# granted server folder (training.services.inference), a model and a dataset export, a label-error search.
JOBS = [
    (JobKind.IMPORT, {"sources": [{"type": "folder", "path": "/srv/imports/team-a", "name": "/srv/imports/team-a"}],
                      "csv": "/srv/imports/team-a/labels.csv", "labels_from_folders": True, "staging_dir": None,
                      "errors": []},
     {"sources": [{"type": "folder", "name": "team-a"}], "csv": "labels.csv", "labels_from_folders": True,
      "errors": []}),
    (JobKind.INFERENCE, {"version_id": 3, "folder": "", "upload_sha256": "ab" * 32, "version": 1,
                         "upload_name": "batch.zip", "inputs_key": "cd" * 32, "zip": "/var/data/inference/9/input.zip"},
     {"version_id": 3, "folder": "", "upload_sha256": "ab" * 32, "version": 1, "upload_name": "batch.zip",
      "inputs_key": "cd" * 32}),
    (JobKind.INFERENCE, {"version_id": 3, "folder": "/srv/granted/cameras", "version": 1, "inputs_key": "cd" * 32},
     {"version_id": 3, "folder": "cameras", "version": 1, "inputs_key": "cd" * 32}),
    (JobKind.EXPORT_MODEL, {"version_id": 3, "version": 1, "inputs_key": "cd" * 32},
     {"version_id": 3, "version": 1, "inputs_key": "cd" * 32}),
    (JobKind.EXPORT_DATASET, {"format": "csv", "filters": {"classes": ["/animals/cats/"], "only_reviewed": True}},
     {"format": "csv", "filters": {"classes": ["/animals/cats/"], "only_reviewed": True}}),
    (JobKind.LABEL_ERRORS, {}, {}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "stored", "shown"), JOBS)
def test_every_kind_of_job_shows_its_parameters_without_server_paths(project, member_of, kind, stored, shown):
    job = Job.objects.create(project=project, kind=kind, status=JobStatus.QUEUED, params=stored)
    client = token_client(member_of(project, Role.REVIEWER))

    detail = client.get(f"/api/projects/{project.slug}/jobs/{job.pk}/")
    listed = client.get(f"/api/projects/{project.slug}/jobs/", {"kind": kind})

    assert detail.json()["params"] == listed.json()["results"][0]["params"] == shown
    assert "/srv/" not in detail.content.decode() + listed.content.decode()
    assert "/var/" not in detail.content.decode() + listed.content.decode()


def test_an_odd_stored_shape_is_shown_without_its_paths_and_without_a_server_error(project, member_of):
    # A source with no type or name, one that is not an object, and params that are not an object at all
    odd = Job.objects.create(project=project, kind=JobKind.IMPORT, params={"sources": [{"path": "/srv/x/a.zip"}, 7]})
    bare = Job.objects.create(project=project, kind=JobKind.IMPORT, params=["/srv/x"])
    client = token_client(member_of(project, Role.MANAGER))

    assert client.get(f"/api/projects/{project.slug}/jobs/{odd.pk}/").json()["params"] == {
        "sources": [{"name": "a.zip"}, {}]
    }
    assert client.get(f"/api/projects/{project.slug}/jobs/{bare.pk}/").json()["params"] == {}


def test_an_annotator_still_gets_no_parameters(project, member_of):
    job = Job.objects.create(project=project, kind=JobKind.EXPORT_DATASET, params={"format": "csv"})
    answer = token_client(member_of(project, Role.ANNOTATOR)).get(f"/api/projects/{project.slug}/jobs/{job.pk}/")
    assert answer.status_code == 200
    assert not {"params", "errors", "error_count", "message", "result"} & set(answer.json())

"""Every API endpoint checks membership: another project -> 404, weak role -> 403, anonymous -> 401."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from labeling.models import Job, JobKind, JobStatus, Role
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project_factory, item_factory, label_class_factory, member_of):
    """Project b with one of everything; users of project a and of b with weak roles."""
    a, b = project_factory(slug="alpha"), project_factory(slug="beta")
    item = item_factory(project=b)
    cat = label_class_factory(project=b, name="cat")
    job = Job.objects.create(project=b, kind=JobKind.EXPORT_DATASET, status=JobStatus.SUCCEEDED,
                             result={"files": ["beta/x.zip"]})  # fmt: skip
    run = TrainingRun.objects.create(project=b, status="succeeded")
    ModelVersion.objects.create(project=b, run=run, number=1, artifact_path="x", architecture="a", active=True)
    return {
        "b": b,
        "item": item,
        "cat": cat,
        "job": job,
        "run": run,
        "outsider": member_of(a, Role.MANAGER, "outsider"),
        "annotator": member_of(b, Role.ANNOTATOR, "annotator_b"),
        "ml": member_of(b, Role.ML_ENGINEER, "ml_b"),
    }


def endpoints(w) -> list[tuple[str, str, str]]:
    """(method, url, capability needed)."""
    s = w["b"].slug
    return [
        ("get", f"/api/projects/{s}/", "view"),
        ("get", f"/api/projects/{s}/classes/", "view"),
        ("post", f"/api/projects/{s}/classes/create/", "manage"),
        ("patch", f"/api/projects/{s}/classes/{w['cat'].pk}/", "manage"),
        ("get", f"/api/projects/{s}/items/", "view"),
        ("get", f"/api/projects/{s}/items/{w['item'].pk}/", "view"),
        ("get", f"/api/projects/{s}/annotations/list/", "view_metrics"),
        ("get", f"/api/projects/{s}/reviews/", "view_metrics"),
        ("get", f"/api/projects/{s}/skips/", "view"),
        ("get", f"/api/projects/{s}/jobs/", "view"),
        ("get", f"/api/projects/{s}/jobs/{w['job'].pk}/", "view"),
        ("get", f"/api/projects/{s}/jobs/{w['job'].pk}/download/", "export"),
        ("post", f"/api/projects/{s}/exports/dataset/", "export"),
        ("get", f"/api/projects/{s}/runs/", "view_metrics"),
        ("get", f"/api/projects/{s}/runs/{w['run'].pk}/", "view_metrics"),
        ("post", f"/api/projects/{s}/runs/create/", "train"),
        ("get", f"/api/projects/{s}/models/", "view_metrics"),
        ("get", f"/api/projects/{s}/models/1/", "view_metrics"),
        ("post", f"/api/projects/{s}/models/1/export/", "export"),
        ("get", f"/api/projects/{s}/predictions/", "view_metrics"),
        ("post", f"/api/projects/{s}/inference/", "export"),
    ]


def test_anonymous_gets_401_everywhere(world):
    client = APIClient()
    for method, url, _ in [
        *endpoints(world),
        ("get", "/api/projects/", ""),
        ("get", "/api/me/token/", ""),
        ("get", "/api/schema/", ""),
    ]:
        assert getattr(client, method)(url).status_code == 401, url


def test_member_of_another_project_gets_404_everywhere(world):
    client = APIClient()
    client.force_authenticate(world["outsider"])
    for method, url, _ in endpoints(world):
        assert getattr(client, method)(url, {}, format="json").status_code == 404, url
    assert [p["slug"] for p in client.get("/api/projects/").json()["results"]] == ["alpha"]


def test_annotator_cannot_export_train_or_read_metrics(world):
    client = APIClient()
    client.force_authenticate(world["annotator"])
    for method, url, capability in endpoints(world):
        answer = getattr(client, method)(url, {}, format="json").status_code
        if capability == "view":
            assert answer == 200, url
        else:
            assert answer == 403, url
    assert not Job.objects.filter(created_by=world["annotator"]).exists()


def test_objects_of_another_project_are_404_through_my_project_urls(world, project_factory, member_of):
    mine = project_factory(slug="mine")
    client = APIClient()
    client.force_authenticate(member_of(mine, Role.MANAGER))
    for url in [
        f"/api/projects/mine/items/{world['item'].pk}/",
        f"/api/projects/mine/jobs/{world['job'].pk}/",
        f"/api/projects/mine/jobs/{world['job'].pk}/download/",
        f"/api/projects/mine/runs/{world['run'].pk}/",
        "/api/projects/mine/models/1/",
        f"/api/projects/mine/items/{2**70}/",
    ]:
        assert client.get(url).status_code == 404, url
    assert client.patch(f"/api/projects/mine/classes/{world['cat'].pk}/", {"name": "x"}).status_code == 404
    assert client.post("/api/projects/mine/models/1/export/").status_code == 404


def test_ml_engineer_reads_metrics_and_may_export_but_not_manage(world):
    client = APIClient()
    client.force_authenticate(world["ml"])
    s = world["b"].slug
    assert client.get(f"/api/projects/{s}/models/").status_code == 200
    assert client.get(f"/api/projects/{s}/predictions/").status_code == 200
    assert client.post(f"/api/projects/{s}/classes/create/", {"name": "x"}, format="json").status_code == 403
    # Bad export input: 400 with a reason, no job.
    before = Job.objects.count()
    answer = client.post(f"/api/projects/{s}/exports/dataset/", {"format": "zip"}, format="json")
    assert answer.status_code == 400
    assert "format" in answer.json()
    assert Job.objects.count() == before

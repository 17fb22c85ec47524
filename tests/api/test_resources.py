"""API behaviour ML staff rely on: tokens, item filters, keyset pages, dataset export jobs end to end, docs page."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import ItemState, JobStatus, Role, Split
from labeling.services.annotations import annotation_create
from tests.factories import token_client
from training.models import ModelVersion, Prediction

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(project_factory, item_factory, label_class_factory, member_of):
    project = project_factory(slug="api")
    cat, dog = label_class_factory(project=project, name="cat"), label_class_factory(project=project, name="dog")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    ml = member_of(project, Role.ML_ENGINEER, "ml")
    items = [item_factory(project=project, priority=i / 10) for i in range(10)]
    for item in items[:4]:
        annotation_create(item=item, user=annotator, class_ids=[cat.pk if item.pk % 2 else dog.pk])
    items[9].split = Split.HOLDOUT
    items[9].save()
    version = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="a", class_ids=[cat.pk, dog.pk], active=True
    )
    for i, item in enumerate(items[4:8]):
        conf = 0.55 + 0.1 * i
        Prediction.objects.create(item=item, model_version=version, probabilities=[conf, 1 - conf],
                                  predicted_class=cat, confidence=conf, uncertainty=1 - conf)  # fmt: skip
    return project, (cat, dog), items, token_client(ml), ml


def ids(answer) -> list[int]:
    assert answer.status_code == 200, answer.content
    return [row["id"] for row in answer.json()["results"]]


def test_token_from_password_and_from_the_session(setup):
    project, _, _, _, ml = setup
    answer = APIClient().post("/api/auth/token/", {"username": "ml", "password": "pw"}, format="json")
    assert answer.status_code == 200
    token = answer.json()["token"]
    assert token == Token.objects.get(user=ml).key
    assert APIClient().post("/api/auth/token/", {"username": "ml", "password": "nope"}).status_code == 400
    session = APIClient()
    session.force_login(ml)
    assert session.get("/api/me/token/").json()["token"] == token
    rotated = session.post("/api/me/token/").json()["token"]
    assert rotated != token
    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert old.get("/api/projects/").status_code == 401
    new = APIClient()
    new.credentials(HTTP_AUTHORIZATION=f"Token {rotated}")
    assert [p["slug"] for p in new.get("/api/projects/").json()["results"]] == [project.slug]


def test_item_filters(setup):
    project, (cat, dog), items, client, _ = setup
    url = f"/api/projects/{project.slug}/items/"
    pk = [i.pk for i in items]
    assert ids(client.get(url, {"state": ItemState.LABELED})) == pk[:4]
    assert ids(client.get(url, {"split": "holdout"})) == [pk[9]]
    assert ids(client.get(url, {"label_class": cat.pk})) == [i.pk for i in items[:4] if i.pk % 2]
    assert ids(client.get(url, {"priority_min": 0.25, "priority_max": 0.55})) == pk[3:6]
    assert ids(client.get(url, {"has_prediction": "true"})) == pk[4:8]
    assert ids(client.get(url, {"has_prediction": "false"})) == pk[:4] + pk[8:]
    assert ids(client.get(url, {"confidence_min": 0.6, "confidence_max": 0.8})) == pk[5:7]
    row = client.get(url, {"state": ItemState.LABELED}).json()["results"][0]
    assert row["labels"] == [cat.pk if items[0].pk % 2 else dog.pk]
    assert row["original_url"].endswith(f"/p/{project.slug}/media/{items[0].pk}/original/?v={items[0].sha256[:16]}")
    for bad in ({"state": "nope"}, {"priority_min": "nan"}, {"confidence_max": "x"}, {"label_class": 2**70}):
        assert client.get(url, bad).status_code == 400, bad


def test_keyset_pages_walk_every_item_once(setup):
    project, _, items, client, _ = setup
    seen, url = [], f"/api/projects/{project.slug}/items/?page_size=3"
    while url:
        answer = client.get(url)
        seen += ids(answer)
        url = answer.json()["next"]
    assert seen == sorted(i.pk for i in items)
    assert "offset" not in client.get(f"/api/projects/{project.slug}/items/?page_size=3").json()["next"]
    assert client.get(f"/api/projects/{project.slug}/items/?cursor=garbage").status_code == 404


def test_predictions_and_versions(setup):
    project, (cat, dog), items, client, _ = setup
    answer = client.get(f"/api/projects/{project.slug}/predictions/", {"confidence_min": 0.7})
    assert [r["item"] for r in answer.json()["results"]] == [items[6].pk, items[7].pk]
    assert client.get(f"/api/projects/{project.slug}/predictions/", {"version": 2}).json()["results"] == []
    assert client.get(f"/api/projects/{project.slug}/models/1/").json()["class_ids"] == [cat.pk, dog.pk]


def test_dataset_export_through_the_api_end_to_end(setup, django_capture_on_commit_callbacks):
    project, _, _, client, _ = setup
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/projects/{project.slug}/exports/dataset/", {"format": "jsonl"}, format="json")
    assert answer.status_code == 202
    job = client.get(f"/api/projects/{project.slug}/jobs/{answer.json()['id']}/").json()
    assert job["status"] == JobStatus.SUCCEEDED
    assert job["result"]["item_count"] == 4
    download = client.get(job["download_url"])
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert len(zf.read("labels.jsonl").splitlines()) == 4
    assert manifest["dataset_hash"] == job["result"]["dataset_hash"]
    listed = client.get(f"/api/projects/{project.slug}/jobs/", {"kind": "export_dataset"}).json()["results"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_bad_export_filters_are_refused_with_a_reason(setup):
    project, _, _, client, _ = setup
    url = f"/api/projects/{project.slug}/exports/dataset/"
    answer = client.post(url, {"format": "csv", "classes": ["unicorn"]}, format="json")
    assert answer.status_code == 400
    assert "unicorn" in json.dumps(answer.json())
    assert client.post(url, {"format": "csv", "val_fraction": 2}, format="json").status_code == 400


def test_class_create_validates(setup, member_of):
    project, *_ = setup
    client = APIClient()
    client.force_authenticate(member_of(project, Role.MANAGER))
    url = f"/api/projects/{project.slug}/classes/create/"
    assert client.post(url, {"name": "bird"}, format="json").status_code == 201
    assert client.post(url, {"name": "bird"}, format="json").status_code == 400
    assert client.post(url, {"name": "x", "parent": 999999}, format="json").status_code == 400
    names = [c["name"] for c in client.get(f"/api/projects/{project.slug}/classes/").json()]
    assert sorted(names) == ["bird", "cat", "dog"]


def test_docs_page_works_offline_and_shows_the_token(setup):
    _, _, _, _, ml = setup
    client = Client()
    client.force_login(ml)
    page = client.get("/api/docs/").content.decode()
    assert "/api/projects/{slug}/items/" in page
    assert "confidence_min" in page
    # No CDN: every script and stylesheet comes from this server.
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page)
    assert client.post("/api/docs/").status_code == 302
    assert Token.objects.get(user=ml).key in client.get("/api/docs/").content.decode()
    assert Client().get("/api/docs/").status_code == 302  # anonymous -> login
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/projects/{slug}/exports/dataset/" in json.loads(schema.content)["paths"]

"""The operator's script, end to end through the REST API with a token: create a project, import a few hundred images,
poll the job until it is done, list the items, make a prediction key and use it, revoke it. Once with the worker run
eagerly (every test run), once with a real Redis and a real Celery worker process (the integration suite)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from labeling.api.tokens import token_replace
from labeling.models import Project
from tests.factories import png_bytes
from tests.serving import conftest as serving_fixtures

predict = serving_fixtures.predict


def script(token: str, predict, *, poll_seconds: float) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    # 1. create a project with a two-level taxonomy
    made = client.post("/api/projects/", {"name": "Shop shelf", "classes": ["drinks/cola", "drinks/water", "snacks"],
                                          "min_labels_to_train": 10}, format="json")  # fmt: skip
    assert made.status_code == 201, made.content
    slug = made.json()["slug"]

    # 2. import 240 files and a zip of 20 more in class folders, plus one corrupt file
    files = [SimpleUploadedFile(f"shelf{n:03d}.png", png_bytes(n)) for n in range(240)]
    files.append(SimpleUploadedFile("broken.png", png_bytes(7777)[:80]))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for n in range(20):
            out.writestr(f"drinks/cola/{n}.png", png_bytes(1000 + n))
    files.append(SimpleUploadedFile("cola.zip", archive.getvalue()))
    started = client.post(f"/api/projects/{slug}/imports/", {"files": files, "labels_from_folders": "true"})
    assert started.status_code == 202, started.content

    # 3. poll the job until it has ended
    deadline = time.monotonic() + poll_seconds
    while True:
        job = client.get(started.json()["url"]).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    assert (job["result"]["imported"], job["result"]["rejected"], job["result"]["labeled"]) == (260, 1, 20)
    assert job["percent"] == 100

    # 4. the items are listed (keyset pages of 100)
    names, url = [], f"/api/projects/{slug}/items/"
    while url:
        page = client.get(url).json()
        names += [row["original_name"] for row in page["results"]]
        url = page["next"]
    assert len(names) == 260
    assert "broken.png" not in names

    # 5. a prediction key: the service takes it (no model exported yet: 409, not 401) until it is revoked
    key = client.post(f"/api/projects/{slug}/serving-keys/", {"name": "shelf camera"}, format="json").json()
    assert predict(slug, key["key"], files=[("x.png", png_bytes(1))])[0] == 409
    assert client.delete(f"/api/projects/{slug}/serving-keys/{key['id']}/").status_code == 200
    assert predict(slug, key["key"], files=[("x.png", png_bytes(1))])[0] == 401
    assert Project.objects.get(slug=slug).items.count() == 260


@pytest.fixture
def creator_token(user_factory, allow_project_creation) -> str:
    return token_replace(user=allow_project_creation(user_factory(username="scripter"))).key


@pytest.mark.django_db(transaction=True)
def test_the_script_with_the_task_run_in_process(creator_token, predict):
    script(creator_token, predict, poll_seconds=5)


@pytest.mark.integration
@pytest.mark.slow
def test_the_script_with_a_real_worker(start_worker, creator_token, predict):
    start_worker(queues="default")
    script(creator_token, predict, poll_seconds=90)

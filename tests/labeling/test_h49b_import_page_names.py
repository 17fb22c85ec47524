"""The import page's upload endpoint refuses a relative path that leaves its folder, as the API does."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from labeling.models import Job, Role
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(project, member_of):
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    return client


def test_a_batch_with_a_name_that_climbs_out_is_refused_by_name_and_nothing_kept(project, manager_client, settings):
    # Given a batch as import.js sends it, but with one path edited to climb out of the upload
    files = [SimpleUploadedFile("a.png", png_bytes(1)), SimpleUploadedFile("b.png", png_bytes(2))]
    names = ["pets/cat/a.png", "pets/../../b.png"]

    # When it is posted to the page's upload endpoint
    answer = manager_client.post(
        reverse("labeling:import_upload", args=[project.slug]), {"files": files, "names": names}
    )

    # Then the page gets an error it shows, naming the entry, and no file was kept and no job made
    assert answer.status_code == 400
    assert "names[1] 'pets/../../b.png' goes up a folder (..)." in answer.json()["error"]
    staging = Path(settings.LABELLOOP_DATA_ROOT) / "staging"
    assert not [p for p in staging.rglob("*") if p.is_file()]
    assert Job.objects.count() == 0

"""The Monitoring page's "Send to the labeling queue" note right after a manager sets "Keep request images (days)"
(tester h56 P14): it said "290 production images are kept and not sent yet (images are kept 0 days)" until the
hourly prune. It now says how many of them are past the retention and go at the next hourly clean-up."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from labeling.models import Role
from serving.models import PredictionLog
from serving.services.prediction_log import prediction_log_prune
from tests.factories import page_client, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(project_factory, label_class_factory):
    project = project_factory(slug="digits", name="Digits")
    for name in ("cat", "dog"):
        label_class_factory(project=project, name=name)
    return project


def log_prediction(project, seed: int, hours_ago: float):
    uid = uuid.uuid4()
    key = default_storage.save(f"serving/{project.pk}/{uid}.png", ContentFile(png_bytes(seed)))
    return PredictionLog.objects.create(
        uid=uid, project=project, created_at=timezone.now() - timedelta(hours=hours_ago), version_number=1,
        top_class="cat", confidence=0.5, margin=0.2, image=key,
    )  # fmt: skip


def send_note(client, project) -> str:
    page = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()
    return " ".join(page.split('id="send-note">')[1].split("</p>")[0].split())


def set_retention(client, project, days: int) -> None:
    response = client.post(reverse("serving:retention", args=[project.slug]), {"keep_images_days": days})
    assert response.status_code in (200, 302)


def test_retention_0_says_the_kept_images_go_at_the_next_hourly_clean_up(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))
    for seed in range(3):
        log_prediction(project, seed, hours_ago=2)

    set_retention(manager, project, 0)

    note = send_note(manager, project)
    assert note.startswith(
        "3 production images are kept and not sent yet. Images are kept 0 days: 3 of them are deleted at the next "
        "hourly clean-up (until then they can still be sent)."
    )
    assert "(images are kept 0 days)" not in note

    prediction_log_prune()  # the hourly clean-up: the page then says none is kept, and no longer warns
    assert send_note(manager, project).startswith(
        "0 production images are kept and not sent yet (images are kept 0 days)."
    )


def test_only_the_images_past_the_retention_are_counted_as_going(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))
    log_prediction(project, 1, hours_ago=3 * 24)
    log_prediction(project, 2, hours_ago=1)
    log_prediction(project, 3, hours_ago=2)

    set_retention(manager, project, 1)

    assert send_note(manager, project).startswith(
        "3 production images are kept and not sent yet. Images are kept 1 day: 1 of them is deleted at the next "
        "hourly clean-up (until then it can still be sent)."
    )


def test_images_within_the_retention_read_as_before(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))
    log_prediction(project, 1, hours_ago=1)

    set_retention(manager, project, 30)

    assert send_note(manager, project).startswith(
        "1 production image is kept and not sent yet (images are kept 30 days). They go through"
    )

"""The drift reference is a random sample of the project's images, labeled or not, holdout included, without the
production images sent to its queue. Before, it was the labeled train images: mostly the queue's picks, which
bench/drift.py measured raising a false drift alarm in 7 of 10 in-distribution windows of CIFAR-10."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from labeling.models import LabelSource, ResolvedLabel, Split
from serving.models import PredictionLog
from serving.services.drift_reference import reference_item_ids

pytestmark = pytest.mark.django_db


def _sent_from_production(project, item) -> None:
    """A prediction whose image was sent to the queue and became `item` (the link is the image's sha256)."""
    PredictionLog.objects.create(
        uid=uuid.uuid4(), project=project, created_at=timezone.now(), version_number=1, top_class="a",
        confidence=0.4, margin=0.1, queued_at=timezone.now(), image_sha256=item.sha256,
    )  # fmt: skip


def test_the_reference_is_the_projects_images_labeled_or_not_without_those_sent_from_production(
    project_factory, item_factory, label_class_factory
):
    # Given a project with labeled and unlabeled train images, holdout images, and two images sent from production
    project = project_factory()
    cls = label_class_factory(project=project, name="a")
    labeled = [item_factory(project=project) for _ in range(3)]
    for item in labeled:
        ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT).classes.add(cls)
    open_ = [item_factory(project=project) for _ in range(4)]
    holdout = [item_factory(project=project, split=Split.HOLDOUT) for _ in range(2)]
    sent = [item_factory(project=project) for _ in range(2)]
    for item in sent:
        _sent_from_production(project, item)
    other = item_factory(project=project_factory())

    # When the drift check picks its reference
    ids = reference_item_ids(project_id=project.pk)

    # Then it is every image the project held, unlabeled and holdout ones too, and not the production ones
    assert ids == sorted(i.pk for i in labeled + open_ + holdout)
    assert other.pk not in ids


def test_the_sample_is_seeded_and_keeps_its_images_as_the_project_grows(project_factory, item_factory):
    # Given a project of 30 images and a reference of 10
    project = project_factory()
    [item_factory(project=project) for _ in range(30)]
    first = reference_item_ids(project_id=project.pk, limit=10)
    assert len(first) == 10
    assert reference_item_ids(project_id=project.pk, limit=10) == first

    # When 5 images are imported
    [item_factory(project=project) for _ in range(5)]

    # Then the sample changes only where a new image pushed one out (the cached embeddings keep serving the rest)
    after = reference_item_ids(project_id=project.pk, limit=10)
    assert len(after) == 10
    assert len(set(first) - set(after)) == len(set(after) - set(first)) <= 5

"""Fixtures of the API fuzz runs: a project with one of everything, and the raw WSGI app on the test database."""

from __future__ import annotations

import pytest
from django.core import signals
from django.db import close_old_connections

from labeling.api.tokens import token_replace
from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from training.models import ModelVersion

FUZZ_SLUG = "fuzz"


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Like Django's test Client: the raw WSGI handler must not close the test transaction's connection."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_token(wsgi_keeps_the_test_connection, project_factory, item_factory, label_class_factory, member_of) -> str:
    """A manager's token for project `fuzz`, which has items, labels, a finished export job and a model version."""
    project = project_factory(slug=FUZZ_SLUG)
    classes = [label_class_factory(project=project, name=n) for n in ("cat", "dog")]
    manager = member_of(project, Role.MANAGER, "fuzzer")
    for i in range(5):
        item = item_factory(project=project)
        if i < 3:
            annotation_create(item=item, user=manager, class_ids=[classes[i % 2].pk])
    Job.objects.create(project=project, kind=JobKind.EXPORT_DATASET, status=JobStatus.SUCCEEDED,
                       result={"files": ["fuzz/missing.zip"]})  # fmt: skip
    ModelVersion.objects.create(project=project, number=1, artifact_path="missing", architecture="x",
                                class_ids=[c.pk for c in classes], active=True)  # fmt: skip
    return token_replace(user=manager).key

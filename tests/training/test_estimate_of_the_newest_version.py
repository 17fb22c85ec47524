"""The newest version gets its own cross-validated estimate even when rounds come faster than label-error searches.

In the digits demo, rounds 2 to 4 finished within 20 s while the search asked for after round 2 was running: the
searches asked for after rounds 3 and 4 were folded into it, and it had been asked for before v3 and v4 existed, so
v4's model page said "No cross-validated estimate yet: ... once nearly every labeled class has at least 5 labels"
with 535 labels, 21 or more in every class."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Role
from training.ml.evaluate import prediction_summary
from training.models import ModelVersion
from training.services.quality import label_errors_after_run, label_errors_job_enqueue

pytestmark = pytest.mark.django_db

NAMES = ["a", "b", "c"]


@pytest.fixture
def world(project_factory, label_class_factory, member_of):
    project = project_factory()
    ids = [label_class_factory(project=project, name=n).pk for n in NAMES]
    return {"project": project, "ids": ids, "viewer": member_of(project, Role.ML_ENGINEER, "mle")}


def version(project, ids, number: int) -> ModelVersion:
    ModelVersion.objects.filter(project=project).update(active=False)
    return ModelVersion.objects.create(
        project=project, number=number, artifact_path="x", architecture="lite0", class_ids=ids,
        metrics={"accuracy": 0.8, "macro_f1": 0.8, "n": 10}, label_count=60, active=True,
    )  # fmt: skip


def cross_validated(n: int = 60) -> dict:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.8, y, (y + 1) % 3)
    return {**prediction_summary(y, pred, NAMES), "folds": 5}


def test_a_round_while_a_search_runs_queues_a_search_of_its_own(world):
    project, ids = world["project"], world["ids"]
    # Given v1's search running
    version(project, ids, 1)
    running = label_errors_job_enqueue(project=project)
    Job.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())

    # When v2's round ends
    version(project, ids, 2)
    label_errors_after_run(project_id=project.pk, version_number=2)

    # Then a search of its own is queued for v2 (the running one judges with v1)
    searches = Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS).order_by("pk")
    assert [j.status for j in searches] == [JobStatus.RUNNING, JobStatus.QUEUED]
    # and a click while both are in flight still gets the search under way, not a third
    assert label_errors_job_enqueue(project=project).pk in {j.pk for j in searches}
    assert searches.count() == 2


def test_a_search_asked_for_before_the_version_and_started_after_it_is_its_estimate(client, world):
    project, ids = world["project"], world["ids"]
    # Given a search asked for before v2 existed, which started (and finished) after v2 was made
    version(project, ids, 1)
    search = Job.objects.create(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.QUEUED)
    v2 = version(project, ids, 2)
    asked = v2.created_at - dt.timedelta(seconds=5)
    Job.objects.filter(pk=search.pk).update(
        created_at=asked, started_at=v2.created_at + dt.timedelta(seconds=1), finished_at=timezone.now(),
        status=JobStatus.SUCCEEDED, result={"status": "ok", "cross_validated": cross_validated()},
    )  # fmt: skip
    client.force_login(world["viewer"])

    # When the model page is opened
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()

    # Then v2's page shows that search's estimate, not "No cross-validated estimate yet"
    assert "Cross-validated over 60 labeled items" in html
    assert 'id="cv-missing"' not in html

"""The label-error API answers for the version the model page shows (h57 P2).

Two rounds 20 s apart made v2 and v3; their searches ran at once on the two workers and v2's ended last. The model
page said "Cross-validated over 160 labeled items" (v3's search) while GET /api/projects/<slug>/label-errors/ gave
v2's search and its estimate over 153 (the last to finish); after making v1 active by hand the page showed v1's
estimate and the API still the newest. The API now says which version its figures are for (the active one), takes
the newest search started in that version's time, and its estimate is the page's."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.reviews import review_tasks_label_errors_set
from tests.factories import token_client
from tests.schema_conformance import assert_matches_schema
from training.ml.evaluate import prediction_summary
from training.models import LabelErrorSearch, ModelVersion

pytestmark = pytest.mark.django_db

NAMES = ["circle", "square", "star"]
T0 = timezone.now() - dt.timedelta(hours=1)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def cross_validated(n: int) -> dict:
    rng = np.random.default_rng(n)
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.9, y, (y + 1) % 3)
    return {**prediction_summary(y, pred, NAMES), "folds": 5}


def make_version(project, ids, number: int, made: dt.datetime) -> ModelVersion:
    ModelVersion.objects.filter(project=project).update(active=False)
    version = ModelVersion.objects.create(
        project=project, number=number, artifact_path=f"v{number}", architecture="lite0", class_ids=ids,
        metrics={"accuracy": 0.9, "macro_f1": 0.9, "n": 10}, label_count=40 * number, active=True,
    )  # fmt: skip
    ModelVersion.objects.filter(pk=version.pk).update(created_at=made)
    version.refresh_from_db()
    return version


def finished_search(project, labels: int, started: dt.datetime, finished: dt.datetime, **search) -> LabelErrorSearch:
    """A search as a worker leaves it: its LabelErrorSearch (stored when it ends) and its Job with the estimate."""
    row = LabelErrorSearch.objects.create(project=project, status="ok", labels=labels, seconds=60, **search)
    LabelErrorSearch.objects.filter(pk=row.pk).update(created_at=finished)
    job = Job.objects.create(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.QUEUED)
    Job.objects.filter(pk=job.pk).update(
        created_at=started - dt.timedelta(seconds=1), started_at=started, finished_at=finished,
        status=JobStatus.SUCCEEDED,
        result={"status": "ok", "search": row.pk, "cross_validated": cross_validated(labels)},
    )  # fmt: skip
    return row


@pytest.fixture
def week(project_factory, label_class_factory, item_factory, member_of):
    """v1 with its search over 120 labels; v2 and v3 made 24 s apart, v2's search (153) started first and ended
    last, v3's (160) started after v3 and ended first; one open suspect, written by v3's search (the newest started:
    v2's, ending after it, left the open suspects to it)."""
    project = project_factory()
    ids = [label_class_factory(project=project, name=n).pk for n in NAMES]
    make_version(project, ids, 1, at(0))
    v1_search = finished_search(project, 120, at(10), at(60))
    make_version(project, ids, 2, at(300))
    make_version(project, ids, 3, at(324))
    item = item_factory(project=project)
    v2_search = finished_search(project, 153, at(301), at(404), suspects={})
    v3_search = finished_search(
        project, 160, at(325), at(399), suspects={str(item.pk): [ids[0], ids[1], 0.9, 0.05, 0.8, 0.1]}
    )
    review_tasks_label_errors_set(project=project, scores={item.pk: 0.85})  # v3's search wrote the open tasks
    return {
        "project": project, "ids": ids, "item": item, "v1": v1_search, "v2": v2_search, "v3": v3_search,
        "viewer": member_of(project, Role.ML_ENGINEER, "mle"),
    }  # fmt: skip


def api(world) -> dict:
    answer = token_client(world["viewer"]).get(f"/api/projects/{world['project'].slug}/label-errors/")
    assert answer.status_code == 200, answer.content
    assert_matches_schema(answer, "/api/projects/{slug}/label-errors/")
    return answer.json()


def model_page(client, world) -> str:
    client.force_login(world["viewer"])
    return client.get(reverse("training:model", args=[world["project"].slug])).content.decode()


def test_overlapping_searches_the_api_gives_the_search_and_estimate_of_the_active_version(client, week):
    # Given v3 active, its search ended before v2's (started earlier) did
    # When the model page and the API are read
    html = model_page(client, week)
    body = api(week)

    # Then both give v3's search: the estimate over its 160 labels, and the API names the version
    assert "Cross-validated over 160 labeled items" in html
    assert body["version"] == 3
    assert body["cross_validated"]["n"] == 160
    assert (body["search"]["id"], body["search"]["version"], body["search"]["labels"]) == (week["v3"].pk, 3, 160)
    assert body["note"] == ""
    # ... and the open suspect is described by the search that wrote it (v3's, the newest started), which it names
    assert body["search"]["suspects_search"] == week["v3"].pk
    [suspect] = body["search"]["suspects"]
    assert (suspect["item"], suspect["given_class"], suspect["suggested_class"]) == (
        week["item"].pk, week["ids"][0], week["ids"][1]
    )  # fmt: skip


def test_after_going_back_to_v1_the_api_gives_v1s_estimate_as_the_page_does(client, week):
    # Given v1 made active by hand
    ModelVersion.objects.filter(project=week["project"]).update(active=False)
    ModelVersion.objects.filter(project=week["project"], number=1).update(active=True)

    html = model_page(client, week)
    body = api(week)

    assert "Cross-validated over 120 labeled items" in html
    assert body["version"] == 1
    assert body["cross_validated"]["n"] == 120
    assert (body["search"]["id"], body["search"]["version"]) == (week["v1"].pk, 1)


def test_a_version_without_a_finished_search_is_said_so_and_gets_no_other_versions_estimate(client, week):
    # Given v4 just made, its search still running
    v4 = make_version(week["project"], week["ids"], 4, at(900))
    running = Job.objects.create(project=week["project"], kind=JobKind.LABEL_ERRORS, status=JobStatus.RUNNING)
    Job.objects.filter(pk=running.pk).update(started_at=v4.created_at + dt.timedelta(seconds=2))

    html = model_page(client, week)
    body = api(week)

    # Then the page shows no estimate, and neither does the API, which says why and names the search it gives
    assert "Cross-validated over" not in html
    assert body["version"] == 4
    assert body["cross_validated"] is None
    assert "v4, the active version, has no finished label-error search yet" in body["note"]
    assert f"job {running.pk} is running" in body["note"]
    assert (body["search"]["id"], body["search"]["version"]) == (week["v3"].pk, 3)
    assert "for v3" in body["note"]


def test_without_any_version_the_newest_search_started_is_given(project_factory, member_of):
    # Given no model version yet and two searches asked for by hand, the first started ending last
    project = project_factory()
    first = finished_search(project, 50, at(0), at(120))
    finished_search(project, 52, at(30), at(90))
    body = api({"project": project, "viewer": member_of(project, Role.ML_ENGINEER, "mle")})
    assert body["version"] is None
    assert body["search"]["version"] is None
    assert body["search"]["labels"] == 52
    assert body["search"]["id"] != first.pk
    assert body["cross_validated"]["n"] == 52

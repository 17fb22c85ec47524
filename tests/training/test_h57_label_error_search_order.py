"""Two label-error searches at once: the older one ending last leaves the newer one's suspects open (h57 P2).

Two rounds 20 s apart made v2 and v3; each queued a search and the two `default` workers ran them at once, v2's
(started first) ending last. It replaced the open label-error review tasks with its own suspects, and the review
page headlined it (the last search to end), while the model page and the label-error API gave v3's. Now a search
that ends after a newer one keeps its own results (its version's figures) and leaves the open suspects to the newer
search; the review page headlines the newest search started, as the model page and the API do."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from labeling.models import JobKind, ReviewTask, ReviewTaskReason
from labeling.services.annotations import annotation_create
from labeling.services.imports import item_create_from_bytes
from labeling.services.jobs import job_create, job_finish, job_start
from tests.factories import token_client
from training.ml.evaluate import evaluate
from training.models import LabelErrorSearch, ModelVersion
from training.services import label_errors as search_service
from training.services.snapshot import label_snapshot

from .test_metric_intervals_pages import COLOURS, colour_png, colour_project

pytestmark = pytest.mark.django_db


def new_version(project, number: int) -> ModelVersion:
    """A round's new active version (the round then queues its label-error search)."""
    ModelVersion.objects.filter(project=project).update(active=False)
    ids = list(project.classes.order_by("order").values_list("pk", flat=True))
    return ModelVersion.objects.create(
        project=project, number=number, artifact_path=f"v{number}", architecture="lite0", class_ids=ids,
        metrics=evaluate(np.eye(4)[[0, 1]] * 0.8 + 0.05, [0, 1], list(COLOURS)), label_count=48, active=True,
    )  # fmt: skip


def slip(project, manager, name: str, colour: str, labeled: str, seed: int) -> int:
    """An image of one colour labeled as another."""
    item = item_create_from_bytes(project=project, name=name, data=colour_png(COLOURS[colour], seed))
    annotation_create(item=item, user=manager, class_ids=[project.classes.get(name=labeled).pk])
    return item.pk


def open_suspects(project) -> set[int]:
    tasks = ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False)
    return set(tasks.values_list("item_id", flat=True))


def run(project, job, monkeypatch, without: int | None = None) -> dict:
    """The search of `job` as a worker runs it (training.tasks.label_errors_find_task: the job started, the search, the
    job finished); `without`: an item labeled after the search started, which its labels do not hold yet."""
    if without is not None:

        def as_it_was(*, project):
            snap = label_snapshot(project=project)
            snap.train = [row for row in snap.train if row[0] != without]
            snap.holdout = [row for row in snap.holdout if row[0] != without]
            return snap

        monkeypatch.setattr(search_service, "label_snapshot", as_it_was)
    result = search_service.label_errors_find(project=project, job=job)
    monkeypatch.setattr(search_service, "label_snapshot", label_snapshot)
    job_finish(job=job, result=result)
    return result


@pytest.fixture
def overlapping(project_factory, member_of, settings, monkeypatch):
    """v2's search started, then one more image labeled (a blue one as red) and v3 made, whose search started; v3's
    ends first, v2's last."""
    project, manager = colour_project(project_factory, member_of, settings, {"red": 24, "blue": 23})
    red_as_blue = slip(project, manager, "slip-red.png", "red", "blue", 500)
    new_version(project, 2)
    v2_job = job_create(project=project, kind=JobKind.LABEL_ERRORS)
    job_start(job=v2_job, total=1, message="starting")
    blue_as_red = slip(project, manager, "slip-blue.png", "blue", "red", 501)
    new_version(project, 3)
    v3_job = job_create(project=project, kind=JobKind.LABEL_ERRORS)
    job_start(job=v3_job, total=1, message="starting")

    v3_result = run(project, v3_job, monkeypatch)
    assert open_suspects(project) == {red_as_blue, blue_as_red}  # what v3's search found
    v2_result = run(project, v2_job, monkeypatch, without=blue_as_red)
    return {
        "project": project, "manager": manager, "red_as_blue": red_as_blue, "blue_as_red": blue_as_red,
        "v2": v2_result, "v3": v3_result,
    }  # fmt: skip


def test_the_older_search_ending_last_leaves_the_newer_ones_suspects_open(overlapping):
    # Given v3's search over 49 labels ended, then v2's over the 48 it started with
    world = overlapping
    project = world["project"]
    assert (world["v3"]["labels"], world["v2"]["labels"]) == (49, 48)

    # Then the open suspects are still v3's: both slips, the blue image labeled red included
    assert open_suspects(project) == {world["red_as_blue"], world["blue_as_red"]}
    # ... and the API lists them, described by v3's search, the one it gives for v3
    body = token_client(world["manager"]).get(f"/api/projects/{project.slug}/label-errors/").json()
    assert body["version"] == 3
    assert (body["search"]["id"], body["search"]["labels"]) == (world["v3"]["search"], 49)
    assert body["search"]["suspects_search"] == world["v3"]["search"]
    assert body["search"]["suspects_open"] == 2
    suggested = {s["item"]: s["suggested_class"] for s in body["search"]["suspects"]}
    red, blue = (project.classes.get(name=n).pk for n in ("red", "blue"))
    assert suggested == {world["red_as_blue"]: red, world["blue_as_red"]: blue}

    # ... and v2's search kept its own results: stored, with its one suspect, and says it left the open ones to v3's
    older = LabelErrorSearch.objects.get(pk=world["v2"]["search"])
    assert (older.labels, set(older.suspects)) == (48, {str(world["red_as_blue"])})
    assert world["v2"]["superseded_by"] == world["v3"]["search"]
    assert "superseded_by" not in world["v3"]


def test_the_review_page_headlines_the_search_the_model_page_shows(client, overlapping):
    # When the manager opens the model page and the label-errors review page
    world = overlapping
    slug = world["project"].slug
    client.force_login(world["manager"])
    model_page = client.get(reverse("training:model", args=[slug])).content.decode()
    review_page = client.get(reverse("labeling:review_label_errors", args=[slug])).content.decode()

    # Then both give v3's search (49 labels), and the review page lists its two suspects
    assert "Cross-validated over 49 labeled items" in model_page
    assert "of the 49 checked labels are probably wrong" in review_page
    assert "2 labels listed below" in review_page
    assert f'data-item="{world["blue_as_red"]}"' in review_page
    assert f'data-item="{world["red_as_blue"]}"' in review_page


def test_going_back_to_v2_gives_v2s_own_search_and_estimate(overlapping):
    # Given v2 made active by hand
    world = overlapping
    project = world["project"]
    ModelVersion.objects.filter(project=project).update(active=False)
    ModelVersion.objects.filter(project=project, number=2).update(active=True)

    # Then the API gives v2's own search and estimate, over the 48 labels it judged; the open suspects stay v3's
    body = token_client(world["manager"]).get(f"/api/projects/{project.slug}/label-errors/").json()
    assert body["version"] == 2
    assert (body["search"]["id"], body["search"]["labels"]) == (world["v2"]["search"], 48)
    assert body["cross_validated"]["n"] == 48
    assert body["search"]["suspects_search"] == world["v3"]["search"]
    assert body["search"]["suspects_open"] == 2

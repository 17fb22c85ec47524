"""The label-error search through the REST API: the latest search with the suspects nobody settled, the
cross-validated estimate the model pages show (with the accuracy estimated on the open images), and starting a
search, for the roles that may and only in their own project."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from labeling.models import Job, JobKind, JobStatus, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from labeling.services.imports import item_create_from_bytes
from labeling.services.reviews import review_submit
from tests.factories import token_client
from tests.schema_conformance import assert_matches_schema
from training.models import LabelErrorSearch

from .test_metric_intervals_pages import COLOURS, add_open_items, colour_png, colour_project, embed_the_pool

pytestmark = pytest.mark.django_db


def url(project) -> str:
    return f"/api/projects/{project.slug}/label-errors/"


def test_a_reviewer_reads_the_search_its_suspects_and_the_estimate_on_the_open_images(
    project_factory, member_of, settings, django_capture_on_commit_callbacks
):
    # Given 24 red and 24 blue labels, one of the red images labeled blue by mistake, and open images a round embedded
    project, manager = colour_project(project_factory, member_of, settings, {"red": 24, "blue": 23})
    classes = {c.name: c for c in project.classes.all()}
    slips = []
    for j in range(1):
        item = item_create_from_bytes(project=project, name=f"slip-{j}.png", data=colour_png(COLOURS["red"], 500 + j))
        annotation_create(item=item, user=manager, class_ids=[classes["blue"].pk])
        slips.append(item.pk)
    add_open_items(project, 6)
    embed_the_pool(project)
    reviewer = member_of(project, Role.REVIEWER, "rita")
    client = token_client(reviewer)
    before = client.get(url(project)).json()
    assert (before["search"], before["cross_validated"]) == (None, None)

    # When the reviewer starts a search through the API and the worker runs it
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(url(project))
    assert started.status_code == 202, started.content
    job = Job.objects.get(pk=started.json()["id"])
    assert (job.kind, job.status) == (JobKind.LABEL_ERRORS, JobStatus.SUCCEEDED), job.message

    # Then the API lists exactly the slip, with the class given, the model's class, and its neighbours, in the shape
    # its OpenAPI schema gives
    answer = client.get(url(project))
    assert_matches_schema(answer, "/api/projects/{slug}/label-errors/")
    body = answer.json()
    search = body["search"]
    assert search["status"] == "ok", search
    assert search["labels"] == 48
    assert search["share_low"] <= search["estimated_share"] <= search["share_high"]
    assert sorted(s["item"] for s in search["suspects"]) == sorted(slips)
    for suspect in search["suspects"]:
        assert (suspect["given_class"], suspect["suggested_class"]) == (classes["blue"].pk, classes["red"].pk)
        assert suspect["p_suggested"] > suspect["p_given"]
        assert suspect["neighbours_suggested"] >= 0.5
        assert suspect["neighbours_given"] <= 0.2
    # ... and the cross-validated estimate with n and intervals, and the accuracy estimated on the open images
    cv = body["cross_validated"]
    assert cv["n"] == 48
    assert cv["accuracy"]["low"] <= cv["accuracy"]["value"] <= cv["accuracy"]["high"]
    assert cv["accuracy"]["value"] == pytest.approx(47 / 48)  # the slip is what the folds get "wrong"
    opened = cv["open_images"]
    assert opened["scored"] == opened["open"] == cv["pool"] > 0
    assert opened["accuracy"]["n"] == 48
    assert opened["accuracy"]["low"] <= opened["accuracy"]["value"] <= opened["accuracy"]["high"]
    assert opened["accuracy"]["method"] == "bootstrap"

    # When the reviewer settles the suspect (here: keeps the given label), it leaves the list; the search stays
    review_submit(task=ReviewTask.objects.get(item_id=slips[0], done=False), reviewer=reviewer, verdict="accept")
    after = client.get(url(project)).json()["search"]
    assert after["id"] == search["id"]
    assert after["suspects"] == []


def test_starting_a_search_while_one_is_queued_returns_that_one(project_factory, member_of, settings):
    project, manager = colour_project(project_factory, member_of, settings, {"red": 6, "blue": 6})
    client = token_client(manager)

    first = client.post(url(project))
    again = client.post(url(project))

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS).count() == 1


def test_annotators_outsiders_and_other_projects_get_nothing(project_factory, member_of, settings):
    project, _ = colour_project(project_factory, member_of, settings, {"red": 6, "blue": 6})
    other = project_factory()
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    reviewer_elsewhere = member_of(other, Role.REVIEWER, "rev")

    # An annotator may not read label quality or start a search
    assert token_client(annotator).get(url(project)).status_code == 403
    assert token_client(annotator).post(url(project)).status_code == 403
    # A reviewer of another project cannot tell this one exists
    assert token_client(reviewer_elsewhere).get(url(project)).status_code == 404
    assert token_client(reviewer_elsewhere).post(url(project)).status_code == 404
    # No token, no answer
    assert APIClient().get(url(project)).status_code in (401, 403)
    # ... and none of it started a search
    assert not Job.objects.filter(kind=JobKind.LABEL_ERRORS).exists()
    assert not ReviewTask.objects.filter(reason=ReviewTaskReason.LABEL_ERROR).exists()


def test_a_script_walks_every_suspect_a_page_at_a_time(project_factory, item_factory, member_of):
    # Given a search with 250 open suspects (scores with ties, so the order needs the item id too) and 3 settled ones
    project = project_factory()
    items = [item_factory(project=project) for _ in range(253)]
    for n, item in enumerate(items):
        ReviewTask.objects.create(
            project=project, item=item, reason=ReviewTaskReason.LABEL_ERROR, score=round(1 - (n // 7) / 40, 6),
            done=n >= 250,
        )  # fmt: skip
    LabelErrorSearch.objects.create(project=project, status="ok", labels=2000, suspects={})
    client = token_client(member_of(project, Role.REVIEWER, "rita"))

    # When a script follows `next` at 100 a page
    pages, address = [], url(project)
    while address:
        body = client.get(address).json()["search"]
        pages.append(body["suspects"])
        address = body["next"]

    # Then it sees every open suspect once, most suspect first, in pages of 100, 100 and 50, and none settled
    assert [len(p) for p in pages] == [100, 100, 50]
    assert body["suspects_open"] == 250
    seen = [(-s["score"], s["item"]) for page in pages for s in page]
    assert seen == sorted(seen)
    assert {item for _, item in seen} == {item.pk for item in items[:250]}
    # ... a page size of its own, capped at 1,000, and the default for a page size that is no number
    assert len(client.get(url(project), {"page_size": 7}).json()["search"]["suspects"]) == 7
    assert len(client.get(url(project), {"page_size": 5000}).json()["search"]["suspects"]) == 250
    assert len(client.get(url(project), {"page_size": "-3"}).json()["search"]["suspects"]) == 100


@pytest.mark.parametrize("cursor", ["garbage", "bm90OmFueQ", "MC41Ojk5OTk5OTk5OTk5OTk5OTk5OTk5OQ", "bmFuOjE"])
def test_an_edited_cursor_is_a_clear_404_and_changes_nothing(project_factory, item_factory, member_of, cursor):
    project = project_factory()
    ReviewTask.objects.create(
        project=project, item=item_factory(project=project), reason=ReviewTaskReason.LABEL_ERROR, score=0.5
    )
    LabelErrorSearch.objects.create(project=project, status="ok", labels=40, suspects={})

    answer = token_client(member_of(project, Role.REVIEWER, "rita")).get(url(project), {"cursor": cursor})

    assert answer.status_code == 404
    assert answer.json() == {"detail": "Invalid cursor"}
    assert ReviewTask.objects.filter(project=project, done=False).count() == 1

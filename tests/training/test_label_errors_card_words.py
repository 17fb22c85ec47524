"""A finished label-error search's job card, and the overview's recent jobs, say a job's result in words, not as its
raw result keys ("outcome: ok · agreement: 0.742 · ..."); the label-errors page swaps in the finished search's
summary and list when its job ends, instead of saying a search is still running until reloaded (tester h51, P9, P14)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from training.models import LabelErrorSearch

pytestmark = pytest.mark.django_db

SEARCH_RESULT = {
    "status": "ok", "search": 4, "labels": 194, "seconds": 42, "suspects": 7, "flagged": 7, "estimated_errors": 9,
    "estimated_share": 0.0464, "share_interval": [0.02, 0.07], "agreement": 0.742, "already_reviewed": 0,
    "not_checked": 5,
}  # fmt: skip
RAW = ("outcome:", "agreement:", "estimated errors:", "suspects:", "labels:", "seconds:")


def _running_search(project) -> Job:
    return Job.objects.create(
        project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.RUNNING, done=15, total=17, message="judging"
    )


def _finish(job: Job, result: dict) -> None:
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, done=job.total, message="Done", result=result)


def _search(project) -> LabelErrorSearch:
    return LabelErrorSearch.objects.create(
        project=project, status="ok", labels=194, seconds=42, agreement=0.742, estimated_share=0.0464,
        share_low=0.02, share_high=0.07, flagged=0, suspects={}, min_per_class=20,
    )  # fmt: skip


def test_the_label_error_pages_poll_renders_the_finished_search_without_raw_keys(project_factory, member_of, client):
    # Given a label-error search running, its card open on the label-errors page of a manager
    project = project_factory()
    client.force_login(member_of(project, Role.MANAGER, "boss"))
    job = _running_search(project)
    page = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()
    poll = re.search(rf'<div class="job" id="job-{job.pk}"[^>]*?hx-get="([^"]+)"', page, re.S)
    assert poll, "the running search's card polls its status"

    # When the search finishes and the card's next poll fetches it
    _finish(job, SEARCH_RESULT)
    polled = client.get(unescape(poll.group(1))).content.decode()

    # Then the card says it ended, with none of the result's raw keys (the page shows the search itself)
    assert "Succeeded" in polled
    for raw in RAW:
        assert raw not in polled, (raw, polled)


def test_the_label_errors_page_swaps_in_the_finished_search(project_factory, member_of, client):
    # Given a previous search on the page and a new one running
    project = project_factory()
    client.force_login(member_of(project, Role.MANAGER, "boss"))
    old = _search(project)
    LabelErrorSearch.objects.filter(pk=old.pk).update(estimated_share=0.1, share_low=0.05, share_high=0.15)
    job = _running_search(project)
    url = reverse("labeling:review_label_errors", args=[project.slug])
    page = client.get(url).content.decode()
    assert "A new label-error search is running" in page
    # the page's part that the job's end refreshes (static/js/app.js triggers job-finished on it)
    part = re.search(r'<div id="label-errors-page"([^>]*)>', page)
    assert part, "no part of the page is refreshed when the search ends"
    attrs = dict(re.findall(r'([\w-]+)(?:="([^"]*)")?', part.group(1)))
    assert attrs.get("hx-trigger") == "job-finished", attrs
    assert "data-refresh-on-finish" in attrs, attrs
    assert attrs.get("hx-select") == "#label-errors-page", attrs
    assert attrs.get("hx-swap") == "outerHTML", attrs
    # the job's card is inside it, so its end reaches it
    assert page.index('id="label-errors-page"') < page.index(f'id="job-{job.pk}"')

    # When the search finishes and the page's part is fetched as htmx fetches it
    _finish(job, SEARCH_RESULT)
    _search(project)
    swapped = client.get(unescape(attrs["hx-get"]), HTTP_HX_REQUEST="true").content.decode()
    fresh = swapped[swapped.index('<div id="label-errors-page"') :]

    # Then it no longer says a search is running, and headlines the new search (4.6 %, not the previous 10 %)
    assert "is running" not in fresh
    assert "About 4.6 % of the 194 checked labels are probably wrong" in " ".join(fresh.split())
    assert "hx-trigger" not in re.search(r'<div id="label-errors-page"[^>]*>', fresh).group(0)


def test_the_overview_says_finished_exports_and_searches_in_words(project_factory, member_of, client):
    # Given a finished model export, a batch inference and a label-error search
    project = project_factory()
    client.force_login(member_of(project, Role.MANAGER, "boss"))
    export = Job.objects.create(
        project=project, kind=JobKind.EXPORT_MODEL, status=JobStatus.SUCCEEDED, done=8, total=8, message="Done",
        result={"version": 5, "architecture": "tf_efficientnet_lite0", "classes": 10, "bytes": 50_540_039,
                "onnx_max_abs_diff": 1e-6, "torchscript_max_abs_diff": 0.0, "files": ["m.zip"]},
    )  # fmt: skip
    Job.objects.create(
        project=project, kind=JobKind.INFERENCE, status=JobStatus.SUCCEEDED, done=51, total=51,
        message="50 files predicted with v5, 1 rejected",
        result={"version": 5, "predicted": 50, "rejected": 1, "bytes": 5628, "files": ["p.csv"]},
    )  # fmt: skip
    Job.objects.create(
        project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED, done=17, total=17, message="Done",
        result=SEARCH_RESULT,
    )  # fmt: skip

    # When the manager opens the project's overview
    html = client.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())

    # Then its recent jobs say them in words, with no raw result keys
    for raw in ("bytes:", "version:", "predicted:", "architecture:", "classes:", "largest difference", *RAW):
        assert raw not in text, (raw, text)
    assert f"Model export #{export.number}" in text
    assert "Version 5 exported (50.54 MB): the download and how each format measured are on the model exports page" in (
        text
    )
    assert "50 files predicted with v5, 1 rejected" in text
    assert "The predictions are on the model exports page" in text
    assert "7 suspected label errors listed: the estimate and the list are on the label-errors page" in text

"""The overview's job cards link only to pages the viewer's role may open (tester h54, P8): an ML engineer was sent
to the label-errors page and a reviewer to the model exports page, and both got 403. Where the role may not open the
page, the card says in plain text where the result is."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from tests.factories import page_client

pytestmark = pytest.mark.django_db

RESULTS = {
    JobKind.EXPORT_MODEL: {"version": 2, "bytes": 4_200_000},
    JobKind.INFERENCE: {"images": 3},
    JobKind.LABEL_ERRORS: {"status": "ok", "suspects": 7, "labels": 194, "agreement": 0.742},
}


@pytest.fixture
def overview(project_factory):
    """A project whose recent jobs are a model export, a batch inference and two label-error searches (one found
    suspects, one judged nothing)."""
    project = project_factory(name="Shapes")
    for kind, result in RESULTS.items():
        Job.objects.create(project=project, kind=kind, status=JobStatus.SUCCEEDED, done=1, total=1, result=result)
    Job.objects.create(
        project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED, done=1, total=1,
        result={"status": "too_few", "reason": "Too few labels to judge."},
    )  # fmt: skip
    return project


def _links(html: str, slug: str) -> set[str]:
    """Every in-project address the page links to (href), without its fragment."""
    return {unescape(h).split("#")[0] for h in re.findall(r'href="([^"]+)"', html) if h.startswith(f"/p/{slug}/")}


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REVIEWER, Role.ML_ENGINEER, Role.ANNOTATOR])
def test_every_link_on_the_overview_opens_for_the_role(overview, member_of, role):
    # Given a member with this role on the overview of a project with finished jobs
    client = page_client(member_of(overview, role))
    page = client.get(reverse("labeling:project_detail", args=[overview.slug]))
    assert page.status_code == 200

    # When they follow each of the overview's links into the project
    links = _links(page.content.decode(), overview.slug)
    assert links

    # Then every page opens
    refused = {url: code for url in sorted(links) if (code := client.get(url).status_code) != 200}
    assert refused == {}, (role, refused)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_an_ml_engineer_is_told_where_the_label_errors_are_without_a_link(overview, member_of):
    client = page_client(member_of(overview, Role.ML_ENGINEER))
    html = client.get(reverse("labeling:project_detail", args=[overview.slug])).content.decode()
    errors_page = reverse("labeling:review_label_errors", args=[overview.slug])
    api = f"/api/projects/{overview.slug}/label-errors/"

    assert errors_page not in html
    text = _text(html)
    assert (
        "7 suspected label errors listed: the estimate and the list are on the label-errors page for managers and"
        f" reviewers, and at GET {api}." in text
    ), text
    assert (
        f"Nothing is flagged. Too few labels to judge. More on the label-errors page for managers and reviewers, and"
        f" at GET {api}." in text
    ), text
    # the address the card names answers the ML engineer
    assert client.get(api).status_code == 200
    # the model exports page opens for them: linked
    assert reverse("training:model_exports", args=[overview.slug]) in html


def test_a_reviewer_is_told_where_the_model_export_is_without_a_link(overview, member_of):
    client = page_client(member_of(overview, Role.REVIEWER))
    html = client.get(reverse("labeling:project_detail", args=[overview.slug])).content.decode()

    assert reverse("training:model_exports", args=[overview.slug]) not in html
    text = _text(html)
    assert (
        "Version 2 exported (4.20 MB): the download and how each format measured are on the model exports page for"
        " managers and ML engineers." in text
    ), text
    assert "The predictions are on the model exports page for managers and ML engineers." in text
    # the label-errors page opens for reviewers: linked
    assert reverse("labeling:review_label_errors", args=[overview.slug]) in html


def test_a_search_that_ends_while_the_overview_is_open_says_the_same_to_an_ml_engineer(overview, member_of):
    # Given an ML engineer on the overview while a label-error search runs (its card polls its status)
    client = page_client(member_of(overview, Role.ML_ENGINEER))
    job = Job.objects.create(project=overview, kind=JobKind.LABEL_ERRORS, status=JobStatus.RUNNING, done=1, total=5)
    html = client.get(reverse("labeling:project_detail", args=[overview.slug])).content.decode()
    poll = re.search(rf'<div class="job" id="job-{job.pk}"[^>]*?hx-get="([^"]+)"', html, re.S)
    assert poll

    # When it ends and the card's next poll fetches it
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, done=5, result={"status": "ok", "suspects": 2})
    polled = client.get(unescape(poll.group(1))).content.decode()

    # Then the card says where the list is, with no link to the page the role may not open
    assert reverse("labeling:review_label_errors", args=[overview.slug]) not in polled
    assert (
        "2 suspected label errors listed: the estimate and the list are on the label-errors page for managers and"
        f" reviewers, and at GET /api/projects/{overview.slug}/label-errors/." in _text(polled)
    )

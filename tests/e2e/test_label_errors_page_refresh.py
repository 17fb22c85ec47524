"""The label-errors page, open while a new search runs, shows the finished search when its job ends: the line that
says a search is running goes and the new headline comes, with no reload and no raw result keys (tester h51, P9)."""

from __future__ import annotations

import pytest

from labeling.models import Job, JobKind, JobStatus, Role
from tests.training.test_label_errors_card_words import SEARCH_RESULT, _search

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_the_page_shows_the_finished_search_without_a_reload(page, login, project_factory, member_of):
    # Given a previous search (10 %) and a new one running, the label-errors page open in a manager's browser
    project = project_factory()
    member_of(project, Role.MANAGER, "boss")
    old = _search(project)
    old.estimated_share, old.share_low, old.share_high = 0.1, 0.05, 0.15
    old.save()
    job = Job.objects.create(
        project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.RUNNING, done=15, total=17, message="judging"
    )
    login("boss")
    page.goto(f"/p/{project.slug}/review/label-errors/")
    running = page.locator("#label-error-running")
    assert "A new label-error search is running" in running.inner_text()
    assert "About 10.0 %" in page.locator("#label-error-headline").inner_text()

    # When the search finishes on the worker
    _search(project)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, done=17, message="Done", result=SEARCH_RESULT)

    # Then within a few seconds the running line is gone and the headline is the new search's
    running.wait_for(state="detached", timeout=8_000)
    headline = page.locator("#label-error-headline")
    assert "About 4.6 % of the 194 checked labels are probably wrong" in " ".join(headline.inner_text().split())
    body = page.locator("body").inner_text()
    for raw in ("outcome:", "agreement:", "estimated errors:"):
        assert raw not in body

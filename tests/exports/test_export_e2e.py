"""In a real browser: the exports page shows a running export's progress and, when it ends, its download link."""

from __future__ import annotations

import pytest

from labeling.models import JobKind, Role
from labeling.selectors.exports import ExportFilters
from labeling.services.exports import dataset_export_run
from labeling.services.jobs import job_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_export_row_polls_and_offers_the_download_when_the_job_ends(page, login, labeled_project, member_of):
    project, *_ = labeled_project
    user = member_of(project, Role.ML_ENGINEER, "mlfan")
    job = job_create(project=project, kind=JobKind.EXPORT_DATASET, created_by=user,
                     params={"format": "imagefolder", "filters": ExportFilters().as_dict()})  # fmt: skip
    login("mlfan")
    page.goto(f"/p/{project.slug}/exports/")
    row = page.locator(f"#export-job-{job.pk}")
    assert "Queued" in row.inner_text()
    assert row.locator("a:has-text('Download')").count() == 0
    # A worker finishes the job while the page is open: the polling fragment notices, the row gains its link.
    dataset_export_run(job_id=job.pk)
    link = page.locator(f"#export-job-{job.pk} a:has-text('Download')")
    link.wait_for(timeout=15_000)
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".zip")
    assert "Succeeded" in page.locator(f"#export-job-{job.pk}").inner_text()

"""The model exports page's job card polls its status every second until the job ends: the poll's last render (the
finished job) is the same card the page shows, so the raw keys the card says in words do not flash under it."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role

pytestmark = pytest.mark.django_db

FINISHED = {
    JobKind.EXPORT_MODEL: {
        "message": "",
        "result": {"version": 3, "architecture": "tf_efficientnet_lite0", "classes": 10, "bytes": 40_123_456,
                   "files": ["m.zip"]},
        "said": ("version: 3", "bytes: 40123456"),
        "kept": "architecture: tf_efficientnet_lite0",
    },
    JobKind.INFERENCE: {
        "message": "198 files predicted with v3, 2 rejected",
        "result": {"version": 3, "predicted": 198, "rejected": 2, "bytes": 22650, "seconds": 4, "files": ["p.csv"]},
        "said": ("version: 3", "predicted: 198", "rejected: 2", "bytes: 22650"),
        "kept": "seconds: 4",
    },
}  # fmt: skip


def _summary(html: str, job: Job) -> str:
    """The job block's "key: value" line, spaces collapsed."""
    block = html[html.index(f'id="job-{job.pk}"') :]
    found = re.search(r'<p class="muted">(.*?)</p>', block, re.S)
    return " ".join(found.group(1).split()) if found else ""


@pytest.mark.parametrize("kind", [JobKind.EXPORT_MODEL, JobKind.INFERENCE])
def test_the_status_poll_renders_a_finished_job_as_the_exports_page_card(project_factory, member_of, client, kind):
    # Given a running job on the model exports page, open in an ML engineer's browser
    project = project_factory(slug="digits", name="Digits")
    job = Job.objects.create(project=project, kind=kind, status=JobStatus.RUNNING, done=0, total=1)
    client.force_login(member_of(project, Role.ML_ENGINEER))
    page = client.get(reverse("training:model_exports", args=[project.slug])).content.decode()
    poll = re.search(rf'<div class="job" id="job-{job.pk}"[^>]*?hx-get="([^"]+)"', page, re.S)
    assert poll, "the running job's card polls its status"

    # When the job finishes and the card's next poll fetches it
    spec = FINISHED[kind]
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, done=1, message=spec["message"], result=spec["result"]
    )
    polled = client.get(unescape(poll.group(1))).content.decode()

    # Then the poll's card leaves out the keys the card says in words, as the page and its row render do
    row = client.get(reverse("training:model_export_job_row", args=[project.slug, job.pk])).content.decode()
    reloaded = client.get(reverse("training:model_exports", args=[project.slug])).content.decode()
    for raw in spec["said"]:
        assert raw not in _summary(polled, job)
    assert spec["kept"] in _summary(polled, job)
    assert _summary(polled, job) == _summary(row, job) == _summary(reloaded, job)

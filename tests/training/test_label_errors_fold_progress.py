"""The label-error search's bar moves fold by fold through its cross-validation (most of a large project's search),
on the page's job card and on the command's bar, and the job row is not written for every embedding batch."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from labeling.models import JobKind
from labeling.services import jobs as job_services
from labeling.services.jobs import job_create, job_start
from tests.training.test_label_errors_page import red_and_blue_labeled
from training.services import label_errors
from training.services.label_errors import label_errors_find

pytestmark = pytest.mark.django_db


def test_the_bar_moves_fold_by_fold_within_the_cross_validation(client, project_factory, member_of, monkeypatch):
    # Given two colours with 22 labels each (judged, 3 fold splits of 5 folds, then the 5 folds of the estimate) and
    # a manager watching the job card
    project, manager = red_and_blue_labeled(project_factory, member_of)
    client.force_login(manager)
    job = job_create(project=project, kind=JobKind.LABEL_ERRORS)
    job_start(job=job, total=1, message="starting")
    written, cards, heard = [], [], []
    real_write = job_services.job_progress

    def write(*, job, done, total=None, message=None):
        real_write(job=job, done=done, total=total, message=message)
        written.append((done, total, message))
        if message and message.startswith("cross-validat"):  # what the page's polling shows at that moment
            card = client.get(reverse("labeling:job_status", args=[project.slug, job.pk])).content.decode()
            cards.append(" ".join(re.search(r"(\d+ / \d+ · [^<]*)</p>", card)[1].split()))

    monkeypatch.setattr(job_services, "job_progress", write)

    # When the search runs (as the command runs it, with its bar)
    label_errors_find(project=project, job=job, on_progress=lambda d, t, s="": heard.append((d, t, s)))

    # Then the job was written once per fold, its progress stepping up inside the cross-validation's span (15 of 21
    # steps: the estimate's 5 folds and the judging follow), each write naming the fold that runs
    folds = [(d, t, m) for d, t, m in written if m.startswith("cross-validating")]
    assert [d for d, _, _ in folds] == list(range(15)), written
    assert {t for _, t, _ in folds} == {21}
    assert folds[2][2] == "cross-validating: fold 3 of 5 (split 1 of 3)"
    assert folds[14][2] == "cross-validating: fold 5 of 5 (split 3 of 3)"
    # and the cross-validated estimate moved one step per fold of its own, naming it, before the judging
    after = [(d, t, m) for d, t, m in written if t == 21 and d >= 15 and not m.startswith("cross-validating")]
    assert after == [
        *[(15 + f, 21, f"cross-validated estimate: fold {f + 1} of 5") for f in range(5)],
        (20, 21, "judging labels"),
    ], written
    # and the page's job card showed it as it went
    assert cards[2] == "2 / 21 · cross-validating: fold 3 of 5 (split 1 of 3)"
    assert cards[8] == "8 / 21 · cross-validating: fold 4 of 5 (split 2 of 3)"
    assert cards[16] == "16 / 21 · cross-validated estimate: fold 2 of 5"
    assert cards[19] == "19 / 21 · cross-validated estimate: fold 5 of 5"
    # and the command's bar heard the same steps
    assert [(d, t, s) for d, t, s in heard if s.startswith("cross-validat")] == [
        (d, t, m) for d, t, m in written if m.startswith("cross-validat")
    ]


def test_job_row_writes_within_a_stage_are_rate_limited(project_factory, monkeypatch):
    # Given the search's progress for a running job, and a clock that moves 0.1 s per report
    project = project_factory()
    job = job_create(project=project, kind=JobKind.LABEL_ERRORS)
    job_start(job=job, total=1, message="starting")
    written, heard, clock = [], [], [0.0]
    real_write = job_services.job_progress
    monkeypatch.setattr(job_services, "job_progress", lambda **kw: (written.append(kw["done"]), real_write(**kw)))

    def tick() -> float:
        clock[0] += 0.1
        return clock[0]

    progress = label_errors._SearchProgress(job, lambda d, t, s="": heard.append(d))
    progress.clock = tick

    # When the embeddings report 50 batches over 5 s, then a new stage begins
    for done in range(1, 51):
        progress(done, 50, "embeddings")
    progress(0, 3, "cross-validating: fold 1 of 3")

    # Then the job row got about one write per 0.5 s (the first, the last, the new stage), the command's bar every one
    assert len(written) <= 13, written
    assert written[0] == 1
    assert written[-2:] == [50, 0]
    assert heard == [*range(1, 51), 0]
    job.refresh_from_db()
    assert (job.done, job.total, job.message) == (0, 3, "cross-validating: fold 1 of 3")


def test_a_multi_label_search_names_its_folds_and_then_the_judging(project_factory, member_of, settings):
    # Given the multi-label colour project (96 images, 4 colours)
    from tests.training.test_label_errors_multi_label import colour_project

    project, _, _ = colour_project(project_factory, member_of, settings)
    heard = []

    # When the search runs with the command's bar
    label_errors_find(project=project, on_progress=lambda d, t, s="": heard.append((d, t, s)))

    # Then the bar names each fold with the classes cross-validated, in order, then the judging, at the last step
    folds = [(d, t, s) for d, t, s in heard if s.startswith("cross-validating")]
    assert folds, heard
    assert folds[0][2].startswith("cross-validating 4 classes: fold 1 of 5"), folds
    assert [d for d, _, _ in folds] == sorted(d for d, _, _ in folds)
    assert any(": fold 3 of 5" in s for _, _, s in folds), folds
    total = folds[0][1]
    assert (total - 1, total, "judging labels") in heard, heard
    # ... and before them, the cross-validated estimate fold by fold, on the same bar
    estimate = [(d, t, s) for d, t, s in heard if s.startswith("cross-validated estimate: fold")]
    assert [(d, s) for d, _, s in estimate][:2] == [
        (0, "cross-validated estimate: fold 1 of 5"),
        (1, "cross-validated estimate: fold 2 of 5"),
    ], heard
    assert {t for _, t, _ in estimate} == {total}
    assert folds[0][0] == 5

"""The model page in a real browser: a new project's first version on a tiny holdout reads as uncertain (interval,
n, the class it could not test, the cross-validated estimate), and the learning curve draws its interval band."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Role
from training.ml.evaluate import evaluate, prediction_summary
from training.models import ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

NAMES = ["zero", "one", "two"]


def test_model_page_shows_how_sure_the_first_versions_are(
    page, login, project_factory, label_class_factory, member_of, tmp_path
):
    # Given two versions evaluated on 6-item holdouts with no "two" in them, and a label-error search's estimate
    project = project_factory(name="Digits")
    ids = [label_class_factory(project=project, name=n).pk for n in NAMES]
    member_of(project, Role.ML_ENGINEER, "mle")
    y = [0, 0, 0, 1, 1, 1]
    for number, pred in ((1, [0, 0, 1, 1, 1, 0]), (2, [0, 0, 0, 1, 1, 1])):
        probs = np.full((6, 3), 0.1)
        probs[np.arange(6), pred] = 0.8
        ModelVersion.objects.create(
            project=project, number=number, artifact_path="x", architecture="tf_efficientnet_lite0", class_ids=ids,
            metrics=evaluate(probs, y, NAMES), label_count=20 * number, active=number == 2,
        )  # fmt: skip
    labels = np.array([k % 3 for k in range(60)])
    Job.objects.create(
        project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED, finished_at=timezone.now(),
        result={"cross_validated": {**prediction_summary(labels, labels, NAMES), "folds": 5}},
    )  # fmt: skip

    # When the ML engineer opens the model page on a 1024 px wide screen
    page.set_viewport_size({"width": 1024, "height": 800})
    login("mle")
    page.goto(f"/p/{project.slug}/model/")

    # Then the active version's accuracy reads 1.000 with its interval and n, not as a sure thing
    active = page.locator("#active-metrics")
    assert active.is_visible()
    accuracy = active.locator('#active-headline [data-metric="accuracy"]')
    assert accuracy.inner_text().startswith("1.000")
    assert "[0.610, 1.000] n = 6" in accuracy.inner_text()
    assert active.locator("#no-support").inner_text().endswith("two.")
    assert "Cross-validated over 60 labeled items" in page.locator("#cv-estimate").inner_text()
    # macro-F1 is 1.000 too, but six right of six gives its bootstrap nothing to bound: it says so beside its n, and
    # the accuracy's interval above is the uncertainty to read (it no longer borrows that interval as its own)
    assert "n = 6, no interval" in active.locator('#active-headline [data-metric="macro_f1"]').inner_text()
    assert "{#" not in page.locator("body").inner_text()
    # The versions table keeps "active" whole (a squeezed table broke it as "acti/ve")
    badge = page.locator("#version-2 td:nth-child(2)")
    assert badge.inner_text() == "active"
    assert badge.evaluate("td => td.querySelector('strong').getClientRects().length") == 1
    architecture = page.locator("#version-2 td:nth-child(9)")
    assert architecture.inner_text() == "tf_efficientnet_lite0"
    assert (
        architecture.evaluate(
            "td => { const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length; }"
        )
        == 1
    )
    page.screenshot(path=str(tmp_path / "model-metrics.png"), full_page=True)
    assert (tmp_path / "model-metrics.png").stat().st_size > 0

    # And the learning curve on the quality page draws the accuracy's band across both versions
    page.goto(f"/p/{project.slug}/model/quality/")
    band = page.locator("#learning-curve .interval-band polygon")
    assert band.count() == 1
    box = band.bounding_box()
    assert box is not None
    assert box["width"] > 100  # spans the two versions' label counts
    assert box["height"] > 20
    page.screenshot(path=str(tmp_path / "model-quality.png"), full_page=True)

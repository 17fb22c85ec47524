"""The multi-label model quality page in a real browser: Hamming accuracy reads beside what answering "absent" for
every class scores, the reliability caption names the colours drawn, and no empty confusion-matrix card is left
(h50 review, P9 and P10)."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.models import Role, TaskType
from training.ml.evaluate import evaluate
from training.models import ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

NAMES = [f"class_{k:02d}" for k in range(12)]


def test_the_multi_label_quality_page_shows_hamming_beside_its_baseline(
    page, login, screenshot, project_factory, label_class_factory, member_of
):
    # Given a 12-class multi-label version whose 30 holdout items carry one class each, and that predicts few
    project = project_factory(name="Shapes multi", task_type=TaskType.MULTI)
    ids = [label_class_factory(project=project, name=n).pk for n in NAMES]
    member_of(project, Role.MANAGER, "pm")
    rng = np.random.default_rng(0)
    labels = [[k % 12] for k in range(30)]
    probs = rng.uniform(0.0, 0.55, size=(30, 12))
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="lite0", class_ids=ids,
        metrics=evaluate(probs, labels, NAMES, multi_label=True), label_count=90, active=True,
    )  # fmt: skip

    # When the manager opens the model quality page
    login("pm")
    page.goto(f"/p/{project.slug}/model/quality/")

    # Then the Hamming accuracy card names the all-absent baseline, 1 - 1/12
    card = page.locator("#headline .stat", has=page.locator("#m-hamming-accuracy"))
    assert "Hamming accuracy (all-absent scores 0.917)" in card.inner_text()
    # And the reliability caption names light pink and purple, and there is no confusion-matrix card
    caption = page.locator("#reliability-caption").inner_text()
    assert "light pink" in caption
    assert "purple" in caption
    assert "red" not in caption
    assert page.locator("h2", has_text="Confusion matrix").count() == 0
    assert page.locator("#no-confusion").is_visible()
    screenshot("h50_multi_label_quality")

"""Multi-label Hamming accuracy is shown beside what answering "absent" for every class scores on the same holdout
(training.ml.evaluate records it; older versions derive it from their per-class supports); the reliability
diagram's caption names the colours it draws; a multi-label page has no empty confusion-matrix card (h50 review,
P9 and P10)."""

import numpy as np
import pytest
from django.urls import reverse

from labeling.models import Role, TaskType
from tests.factories import page_client
from training.ml.evaluate import evaluate
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

NAMES = ["a", "b", "c", "d", "e"]
# 4 items, 5 classes, 6 labels in all: answering "absent" everywhere gets 14 of 20 decisions right.
LABELS = [[0], [1, 2], [], [0, 3, 4]]
PROBS = [[0.9, 0.1, 0.1, 0.1, 0.1], [0.1, 0.9, 0.1, 0.1, 0.6], [0.1] * 5, [0.9, 0.1, 0.1, 0.1, 0.1]]


def test_the_all_absent_baseline_is_one_minus_the_mean_share_of_positives():
    from training.ml.evaluate import hamming_all_absent

    y = np.zeros((4, 5))
    for row, classes in enumerate(LABELS):
        y[row, classes] = 1
    assert hamming_all_absent(y) == pytest.approx(1 - (6 / 4) / 5)  # 0.7
    assert hamming_all_absent(np.zeros((0, 5))) is None
    m = evaluate(np.asarray(PROBS), LABELS, NAMES, multi_label=True)
    assert m["hamming_all_absent"] == pytest.approx(0.7)
    assert m["hamming_accuracy"] == pytest.approx(16 / 20)


@pytest.fixture
def multi(project_factory, label_class_factory, member_of):
    project = project_factory(task_type=TaskType.MULTI)
    classes = [label_class_factory(project=project, name=name) for name in NAMES]
    manager = member_of(project, Role.MANAGER, "pm")
    return project, classes, page_client(manager)


def _version(project, classes, metrics, number=1):
    return ModelVersion.objects.create(
        project=project, number=number, artifact_path="a", architecture="lite0",
        class_ids=[c.pk for c in classes], metrics=metrics, label_count=40, active=True,
    )  # fmt: skip


def _pages(client, project):
    quality = client.get(reverse("training:model_quality", args=[project.slug])).content.decode()
    model = client.get(reverse("training:model", args=[project.slug])).content.decode()
    return quality, model


def test_hamming_accuracy_is_shown_beside_its_all_absent_baseline(multi):
    # Given a multi-label version evaluated now (its metrics hold the baseline)
    project, classes, client = multi
    _version(project, classes, evaluate(np.asarray(PROBS), LABELS, NAMES, multi_label=True))

    # When the manager opens the model quality page and the model page
    quality, model = _pages(client, project)

    # Then both show Hamming accuracy 0.800 with "all-absent scores 0.700" beside it
    assert 'id="m-hamming-accuracy">0.800</b>Hamming accuracy <span class="baseline"' in quality
    assert 'data-metric="hamming_accuracy">0.800' in model
    for html in (quality, model):
        assert "(all-absent scores 0.700)" in html


def test_an_older_version_derives_the_baseline_from_its_per_class_supports(multi):
    # Given a version stored before the baseline was recorded
    project, classes, client = multi
    metrics = evaluate(np.asarray(PROBS), LABELS, NAMES, multi_label=True)
    del metrics["hamming_all_absent"]
    _version(project, classes, metrics)

    # Then both pages still show the baseline, worked out from the supports (6 labels over 4 items x 5 classes)
    for html in _pages(client, project):
        assert "(all-absent scores 0.700)" in html


def test_without_supports_the_baseline_is_left_out(multi):
    project, classes, client = multi
    metrics = evaluate(np.asarray(PROBS), LABELS, NAMES, multi_label=True)
    del metrics["hamming_all_absent"], metrics["per_class"]
    _version(project, classes, metrics)
    for html in _pages(client, project):
        assert "0.800" in html
        assert "all-absent" not in html


def test_single_label_pages_show_no_baseline(project_factory, label_class_factory, member_of):
    project = project_factory()
    classes = [label_class_factory(project=project, name=n) for n in ("cat", "dog")]
    _version(project, classes, evaluate(np.asarray([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 1], ["cat", "dog"]))
    for html in _pages(page_client(member_of(project, Role.MANAGER, "pm")), project):
        assert "all-absent" not in html


def test_the_reliability_caption_names_the_colours_drawn_and_multi_label_has_no_empty_matrix_card(multi):
    # Given a multi-label version with a reliability diagram
    project, classes, client = multi
    _version(project, classes, evaluate(np.asarray(PROBS), LABELS, NAMES, multi_label=True))

    # When the manager opens the model quality page
    html, _ = _pages(client, project)

    # Then the gap is explained in the colours the diagram draws (a red at 35 % opacity: light pink on the page's
    # white, purple over a blue bar), each with what it means; nothing is called red
    assert 'fill="#e45756" fill-opacity="0.35"' in html
    caption = html[html.index('id="reliability-caption"') :].split("</p>")[0]
    assert "light pink above a bar where the model is over-confident" in caption
    assert "purple over the top of a bar where it is under-confident" in caption
    assert "red" not in caption
    # And no "Confusion matrix" card: one short line says why there is none
    assert "<h2>Confusion matrix</h2>" not in html
    assert 'id="no-confusion"' in html

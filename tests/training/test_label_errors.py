"""The label-error search end to end on a labeled digits project: real images, Lite0 embeddings (32 px) from the
feature store, 5-fold out-of-sample probabilities, confident learning, review tasks ranked by score."""

import numpy as np
import pytest

from labeling.models import LabelSource, ResolvedLabel, ReviewTask, ReviewTaskReason, Role
from labeling.services.reviews import review_submit
from training.services.label_errors import DEFAULT_C, REPEATS, label_errors_find, labeled_embeddings
from training.tasks import label_errors_find_task

from .helpers import digit_items

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

N_IMAGES = 1797  # all of scikit-learn's digits: ~90 flipped labels, so one item is not the whole comparison
NOISE = 0.05


@pytest.fixture
def digits_project(project_factory, label_class_factory, settings):
    """The digit images with imported labels, 5 % of them flipped to another digit."""
    settings.LABELLOOP_ROUND_OVERRIDES = {"num_workers": 0, "score_batch_size": 200}
    project = project_factory(image_size=32)
    classes = [label_class_factory(project=project, name=str(d), hotkey=str(d) if d else "0") for d in range(10)]
    rng = np.random.default_rng(0)
    flipped_items = set()
    for item, digit in digit_items(project, N_IMAGES):
        label = int(digit)
        if rng.random() < NOISE:
            label = (label + int(rng.integers(1, 10))) % 10
            flipped_items.add(item.pk)
        resolved = ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT)
        resolved.classes.set([classes[label]])
    return project, classes, flipped_items


def test_suspected_errors_are_mostly_real_errors_and_rerun_is_idempotent(digits_project, member_of):
    from cleanlab.filter import find_label_issues as cleanlab_find

    from training.ml.confident import cross_val_pred_probs

    project, _classes, flipped_items = digits_project
    result = label_errors_find(project=project)

    assert result["status"] == "ok"
    tasks = list(ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR).order_by("-score"))
    assert tasks
    assert all(0 <= t.score <= 1 for t in tasks)

    # The same out-of-sample probabilities (same embeddings, folds and seed) ranked by cleanlab.
    ids, features, labels, classes = labeled_embeddings(project=project)
    probs = cross_val_pred_probs(
        features, labels, n_classes=len(classes.ids), folds=5, C=DEFAULT_C, seed=0, repeats=REPEATS
    )
    truth = np.array([i in flipped_items for i in ids])
    position = {item_id: k for k, item_id in enumerate(ids)}
    ours = np.array([position[t.item_id] for t in tasks])
    theirs = cleanlab_find(labels, probs, return_indices_ranked_by="self_confidence")
    # Every task is a label the out-of-sample model disagrees with.
    assert (probs[ours].argmax(axis=1) != labels[ours]).all()
    # What a reviewer meets: three in four of the listed suspects are real errors (50 listed, 42 of the 100 errors),
    # and the list finds two in five of the errors. Cleanlab's list on the same probabilities is a quarter real
    # errors (364 for 100 errors), and so was ours before suspects needed their neighbours' backing (490 suspects, 97
    # real); before a lean was left out (label_search.MIN_ODDS) it was 153 suspects, 71 real: 46 %, where the model's
    # own mistakes on these 32 px embeddings kept half the list false.
    precision, recall = truth[ours].mean(), truth[ours].sum() / truth.sum()
    assert precision >= 0.75, (len(ours), precision)
    assert recall >= 0.38, (len(ours), recall)
    assert precision >= truth[theirs].mean() + 0.15

    # A reviewer confirms the top suspect's label as it is (an imported label): it must not come back on a rerun.
    reviewer = member_of(project, Role.REVIEWER, "rev")
    review_submit(task=tasks[0], reviewer=reviewer, verdict="accept")
    rerun = label_errors_find_task(project.pk)
    assert rerun["status"] == "ok"
    open_tasks = ReviewTask.objects.filter(reason=ReviewTaskReason.LABEL_ERROR, done=False)
    assert open_tasks.count() == len({t.item_id for t in open_tasks})
    assert not open_tasks.filter(item_id=tasks[0].item_id).exists()
    assert ResolvedLabel.objects.get(item_id=tasks[0].item_id).source == LabelSource.REVIEW


def test_too_few_labels_is_reported_not_an_error(project_factory, label_class_factory):
    project = project_factory()
    label_class_factory(project=project, name="a")
    result = label_errors_find(project=project)
    assert result["status"] == "too_few"
    assert "needs at least" in result["reason"]
    assert not ReviewTask.objects.exists()

"""The label-error search on labels the queue asked for: the images the model was least sure of, every label right.
A cross-validated model disagrees with many of those right labels; the search must not pass that off as errors."""

import numpy as np
import pytest

from labeling.models import Item, ItemState, LabelSource, ResolvedLabel, ReviewTask, ReviewTaskReason
from training.constants import project_cache_dir
from training.ml.embeddings import EmbeddingStore
from training.ml.heads import fit_head, predict_head
from training.ml.strategies import margin
from training.models import LabelErrorSearch, RunMode
from training.services.label_errors import label_errors_find
from training.services.rounds import round_config
from training.services.snapshot import item_local_path, label_snapshot

from .helpers import digit_items, resolve

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def embedded_digits(project) -> tuple[list, np.ndarray, np.ndarray]:
    """The digits as items of `project`, their embeddings as a head-mode round computes them, and the true digits."""
    items = digit_items(project, 1797)
    snap = label_snapshot(project=project)
    cfg = round_config(project=project, classes=snap.classes, mode=RunMode.HEAD)
    store = EmbeddingStore(project_cache_dir(project))
    store.compute([i.pk for i, _ in items], [item_local_path(i) for i, _ in items], cfg)
    return items, store.get([i.pk for i, _ in items], cfg), np.array([d for _, d in items])


def queue_picks(x, digits, rounds: int, batch: int, flips: int = 0, seed: int = 0) -> tuple[list[int], set[int]]:
    """5 right labels per digit, then `rounds` batches of the items the latest head is least sure of (margin), as
    annotators working the queue would label them; then `flips` of the queue's labels to be turned wrong. Returns
    the labeled indices and the wrong ones."""
    rng = np.random.default_rng(seed)
    labeled = [int(i) for d in range(10) for i in rng.choice(np.nonzero(digits == d)[0], 5, replace=False)]
    for _ in range(rounds):
        rest = np.setdiff1d(np.arange(len(digits)), labeled)
        fit = fit_head(x[labeled], [[int(digits[i])] for i in labeled], 10, unlabeled=x[rest])
        unsure = margin(predict_head(fit.head, x[rest]))
        labeled += [int(i) for i in rest[np.argsort(-unsure, kind="stable")[:batch]]]
    wrong = set(rng.choice(labeled[50:], flips, replace=False).tolist()) if flips else set()
    return labeled, wrong


def write_labels(items, classes, labeled, wrong) -> None:
    """The labels as imported: the wrong ones three digits off."""
    for i in labeled:
        item, digit = items[i]
        resolve(item, classes[(digit + 3) % 10 if i in wrong else digit], source=LabelSource.IMPORT)


def label_like_the_queue(project, classes, rounds: int, batch: int, flips: int = 0) -> tuple[list, set, tuple]:
    """Queue labels (queue_picks) written to `project`. Returns the labeled items, the pks of the wrong ones, and
    (embeddings, true digits, labeled indices)."""
    items, x, digits = embedded_digits(project)
    labeled, wrong = queue_picks(x, digits, rounds, batch, flips)
    write_labels(items, classes, labeled, wrong)
    return [items[i][0] for i in labeled], {items[i][0].pk for i in wrong}, (x, digits, np.asarray(labeled))


@pytest.fixture
def digits(project_factory, label_class_factory, settings):
    settings.LABELLOOP_ROUND_OVERRIDES = {"num_workers": 0, "score_batch_size": 200}
    project = project_factory(image_size=64)
    return project, [label_class_factory(project=project, name=str(d)) for d in range(10)]


def test_right_labels_of_unsure_images_are_not_listed_as_errors(digits):
    # Given 450 right labels, 400 of them on the images the model was least sure of when the queue served them
    project, classes = digits
    label_like_the_queue(project, classes, rounds=10, batch=40)

    # When the search runs
    result = label_errors_find(project=project)

    # Then it lists few of them, if any: none of 414 judged in this draw, 0 or 1 in each of the next five (before the
    # model had to find its class 5 times as probable as the given one: 11 to 17 each, 12 in this draw; before
    # suspects needed their neighbours' backing: 101)
    assert result["status"] == "ok", result
    listed = ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False).count()
    search = LabelErrorSearch.objects.get(pk=result["search"])
    assert listed <= 0.015 * search.labels, (listed, search.labels)
    # ... and the headline does not claim a share of wrong labels that is not there (before: 26 %)
    assert search.estimated_share <= 0.06, search.estimated_share


def test_slips_among_the_queue_labels_are_what_the_list_shows(digits):
    # Given six draws of the same kind of queue labels, each with 20 of their 450 turned into another digit
    project, classes = digits
    items, x, truth = embedded_digits(project)
    found, suspects = [], []
    for seed in range(6):
        ResolvedLabel.objects.filter(project=project).delete()
        Item.objects.filter(project=project).update(state=ItemState.UNLABELED)
        labeled, wrong = queue_picks(x, truth, rounds=10, batch=40, flips=20, seed=seed)
        write_labels(items, classes, labeled, wrong)

        # When the search runs on each
        label_errors_find(project=project)
        listed = set(
            ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False).values_list(
                "item_id", flat=True
            )
        )
        found.append(len(listed & {items[i][0].pk for i in wrong}))
        suspects.append(len(listed))

    # Then the lists are short and mostly the slips. One draw is too few to bound: these six held 1 or 2 slips among
    # 2 to 4 suspects each, 11 of 16 in all (69 %, where the slips are 4.4 % of the labels). Before the model had to
    # find its class 5 times as probable as the given one (label_search.MIN_ODDS), 60 draws held 0 to 7 slips among
    # 11 to 28 suspects, 3.1 of 18.7 on average (17 %); before suspects needed their neighbours' backing, one list
    # held 16 slips among 128.
    assert sum(suspects) <= 60, (found, suspects)
    assert sum(found) >= 8, (found, suspects)
    assert sum(found) >= 0.4 * sum(suspects), (found, suspects)


def test_the_estimate_on_the_open_images_allows_for_the_queue_asking_for_the_hard_ones(digits):
    # Given four draws of 200 right labels, 150 of them on the images the model was least sure of when the queue
    # served them
    project, classes = digits
    items, x, truth = embedded_digits(project)
    gaps, errors = [], []
    for seed in range(4):
        ResolvedLabel.objects.filter(project=project).delete()
        Item.objects.filter(project=project).update(state=ItemState.UNLABELED)
        labeled, _ = queue_picks(x, truth, rounds=5, batch=30, seed=seed)
        write_labels(items, classes, labeled, set())
        open_ = np.setdiff1d(np.arange(len(truth)), labeled)
        # ... and the head a version trains on them, self-trained on the open images (what the next version is)
        version = fit_head(x[labeled], [[int(truth[i])] for i in labeled], 10, unlabeled=x[open_])
        right_on_open = float((predict_head(version.head, x[open_]).argmax(1) == truth[open_]).mean())

        # When the search runs
        cv = label_errors_find(project=project)["cross_validated"]
        opened = cv["open_images"]
        assert opened["images"] == len(open_) == opened["of"]
        assert opened["n"] == 200
        gaps.append(right_on_open - cv["accuracy"])
        errors.append(opened["accuracy"] - right_on_open)

    # Then the out-of-fold accuracy over the labels reads far below the model on the open images (measured: 11 to 22
    # points): the queue asked for the hard ones
    # (per draw the figures move with the CPU's arithmetic: on an AMD EPYC one draw read 5.0 points, the four
    # 11.7 on average; the test bounds the mean and keeps every draw clearly below)
    assert float(np.mean(gaps)) > 0.08, gaps
    assert min(gaps) > 0.03, gaps
    # ... while the estimate on the open images lands close to it: 0.6 to 6.1 points off, 3.6 on average (measured
    # on a 2-core Xeon with AVX-512 FP16; one draw on another CPU read 1 point off, this one's first 6.1). One draw is
    # too few to bound to a few points, so the test bounds the four draws' mean; each is closer than the out-of-fold
    # figure, by 5 to 21 points.
    # (on the AMD EPYC: 2.8 to 12.1 points off, 6.6 on average, against an out-of-fold gap of 11.7 on average; the
    # draw whose gap read 5.0 read 12.1 off: one draw is too few to judge, the mean is what the test bounds)
    assert float(np.mean(np.abs(errors))) <= 0.07, errors
    assert float(np.mean(np.abs(errors))) < float(np.mean(gaps)) - 0.04, (errors, gaps)

"""The head's self-training on the unlabeled pool (fit_head(unlabeled=...))."""

from __future__ import annotations

import numpy as np
import torch

from training.ml.heads import PSEUDO_THRESHOLD, feature_stats, fit_head, predict_head


def _tilted_problem():
    """Two tall blobs split by x = 0; the four labels sit at the blobs' top and bottom ends, so a head that
    sees only them tilts its boundary. The pool's confident items straighten it."""
    rng = np.random.default_rng(0)
    n = 400
    pool = np.concatenate([rng.normal([-3, 0], [1, 4], size=(n, 2)), rng.normal([3, 0], [1, 4], size=(n, 2))]).astype(
        np.float32
    )
    truth = np.repeat([0, 1], n)
    labeled = np.array([[-3, 5], [-2.5, 4], [3, -5], [2.5, -4]], dtype=np.float32)
    labels = [[0], [0], [1], [1]]
    return pool, truth, labeled, labels, feature_stats(np.concatenate([labeled, pool]))


def test_self_training_on_the_pool_corrects_a_head_fitted_on_few_labels():
    pool, truth, labeled, labels, stats = _tilted_problem()
    alone = fit_head(labeled, labels, 2, stats=stats)
    trained = fit_head(labeled, labels, 2, stats=stats, unlabeled=pool)
    acc_alone = (predict_head(alone.head, pool).argmax(1) == truth).mean()
    acc_trained = (predict_head(trained.head, pool).argmax(1) == truth).mean()
    assert alone.pseudo_labeled == 0
    assert acc_trained >= acc_alone + 0.01, (acc_alone, acc_trained)


def test_pseudo_labels_are_exactly_the_pool_items_the_first_fit_is_sure_of():
    pool, _, labeled, labels, stats = _tilted_problem()
    first = fit_head(labeled, labels, 2, stats=stats)
    sure = int((predict_head(first.head, pool).max(1) >= PSEUDO_THRESHOLD).sum())
    assert 0 < sure < len(pool)
    assert fit_head(labeled, labels, 2, stats=stats, unlabeled=pool, pseudo_rounds=1).pseudo_labeled == sure
    stricter = fit_head(labeled, labels, 2, stats=stats, unlabeled=pool, pseudo_threshold=0.95, pseudo_rounds=1)
    assert stricter.pseudo_labeled < sure
    # a second round relabels the pool with the self-trained head, which is sure of more of it
    assert fit_head(labeled, labels, 2, stats=stats, unlabeled=pool, pseudo_rounds=2).pseudo_labeled > sure


def test_no_confident_pool_item_means_the_plain_fit():
    pool, _, labeled, labels, stats = _tilted_problem()
    plain = fit_head(labeled, labels, 2, stats=stats)
    none_sure = fit_head(labeled, labels, 2, stats=stats, unlabeled=pool, pseudo_threshold=1.01)
    assert none_sure.pseudo_labeled == 0
    assert torch.equal(plain.head.linear.weight, none_sure.head.linear.weight)


def test_multi_label_heads_do_not_self_train():
    pool, _, labeled, _, stats = _tilted_problem()
    fit = fit_head(labeled, [[0], [0, 1], [1], [1]], 2, multi_label=True, stats=stats, unlabeled=pool)
    assert fit.pseudo_labeled == 0


def test_cross_validation_predicts_each_label_with_a_head_that_never_saw_it():
    from training.ml.heads import cross_val_head

    pool, truth, _, _, _ = _tilted_problem()
    rng = np.random.default_rng(1)
    picks = rng.choice(len(pool), size=20, replace=False)
    features, labels = pool[picks], truth[picks].copy()
    herring = int(np.nonzero(labels == 0)[0][0])
    labels[herring] = 1  # a point of the left blob, labeled right
    stats = feature_stats(np.concatenate([features, pool]))

    cv = cross_val_head(features, labels, 2, folds=5, unlabeled=pool, stats=stats)
    probs = cv.probs

    assert probs.shape == (20, 2)
    # Each fold's head scored the unlabeled pool too: one top probability per fold and pool item
    assert cv.unlabeled_confidence.shape == (5, len(pool))
    assert (cv.unlabeled_confidence >= 0.5).all()
    assert (cv.unlabeled_confidence <= 1.0 + 1e-6).all()
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    # Its fold's head never saw the wrong label: it calls the point what its blob is
    assert probs[herring].argmax() == 0
    # ... and the other labels, each predicted by a head trained without it, come out right
    others = np.arange(20) != herring
    assert (probs[others].argmax(1) == labels[others]).mean() >= 0.9


def test_self_training_learns_from_the_kept_pool_rows_in_place_as_from_rows_joined_to_the_labels():
    from training.ml.heads import _fit, _kept_first

    # Given standardized labels and a pool, some of its rows kept with a guessed class
    pool, truth, labeled, labels, _ = _tilted_problem()
    z, zu = torch.as_tensor(labeled), torch.as_tensor(pool.copy())
    y = torch.tensor([ls[0] for ls in labels])
    keep = torch.as_tensor(np.random.default_rng(1).random(len(pool)) < 0.6)
    guess = torch.as_tensor(truth.copy())
    joined, joined_classes = torch.cat([z, zu[keep]]), torch.cat([y, guess[keep]])

    # When the kept rows move to the front of the pool, in place
    k = _kept_first(zu, guess, keep, block=7)

    # Then the front holds exactly the kept rows with their classes, and the back the others
    assert k == int(keep.sum())
    front = {(tuple(r), int(c)) for r, c in zip(zu[:k].tolist(), guess[:k].tolist(), strict=True)}
    assert front == {(tuple(r), int(c)) for r, c in zip(pool[keep.numpy()].tolist(), truth[keep.numpy()], strict=True)}
    assert sorted(map(tuple, zu[k:].tolist())) == sorted(map(tuple, pool[~keep.numpy()].tolist()))
    # ... and the head learning from them where they lie is the head fitted on them joined to the labels
    w, b = _fit(z, y, 2, 0.2, False, pool=(zu[:k], guess[:k]))
    joined_w, joined_b = _fit(joined, joined_classes, 2, 0.2, False)
    assert torch.allclose(w, joined_w, atol=1e-4), (w, joined_w)
    assert torch.allclose(b, joined_b, atol=1e-4), (b, joined_b)


def test_self_training_leaves_the_callers_pool_untouched():
    pool, _, labeled, labels, stats = _tilted_problem()
    before = pool.copy()
    fit_head(labeled, labels, 2, stats=stats, unlabeled=pool)
    assert np.array_equal(pool, before)

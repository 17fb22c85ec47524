"""Confident learning on tiny known inputs, and on a simulated noisy digits data set against cleanlab."""

import numpy as np
import pytest

from training.ml import confident
from training.ml.neighbours import NeighbourSupport, neighbour_support

LABELS = np.array([0, 0, 0, 1, 1, 1])
PROBS = np.array(
    [
        [0.9, 0.1],
        [0.8, 0.2],
        [0.1, 0.9],  # labeled 0, the model is sure it is 1: a label error
        [0.2, 0.8],
        [0.3, 0.7],
        [0.4, 0.6],
    ]
)


def test_thresholds_are_mean_self_confidence_per_given_class():
    t = confident.per_class_thresholds(LABELS, PROBS)
    assert t == pytest.approx([(0.9 + 0.8 + 0.1) / 3, (0.8 + 0.7 + 0.6) / 3])


def test_confident_joint_puts_the_flipped_example_off_the_diagonal():
    joint = confident.confident_joint(LABELS, PROBS)
    # Example 2 (labeled 0) clears class 1's threshold 0.7 -> C[0, 1] = 1.
    assert joint[0, 1] == 1
    assert joint[1, 0] == 0
    assert joint.trace() == 4  # examples 0, 1, 3, 4 (5 clears neither threshold: 0.4 < 0.6, 0.6 < 0.7)


def test_find_label_issues_flags_the_flip_and_ranks_everything_by_self_confidence():
    issues = confident.find_label_issues(LABELS, PROBS)
    assert issues.issue_indices.tolist() == [2]
    assert issues.ranking.tolist() == [2, 5, 4, 1, 3, 0]  # self-confidence .1 .6 .7 .8 .8 .9 (ties by index)
    assert issues.suggested[2] == 1
    margin = confident.find_label_issues(LABELS, PROBS, ranking="normalized_margin")
    assert margin.quality[2] == pytest.approx((0.1 - 0.9 + 1) / 2)


def test_calibrated_joint_rows_sum_to_given_label_counts():
    issues = confident.find_label_issues(LABELS, PROBS)
    calibrated = confident.calibrated_joint(issues.joint, LABELS)
    assert calibrated.sum(axis=1) == pytest.approx([3, 3])
    # Class 0: 3 labeled, 2 confidently 0 and 1 confidently 1 -> one estimated error.
    assert issues.estimated_errors == 1
    assert confident.suspects(issues, LABELS).tolist() == [2]


def test_suspects_never_list_a_label_the_model_agrees_with():
    # Given: the calibrated estimate (5) exceeds the confidently flagged labels (4), so the list is padded from the
    # ranking, whose next example (7) is labeled 1 with the model preferring 1 (0.55): a "given 1, model says 1" row.
    labels = np.repeat([0, 1], 5)
    p0 = np.array([0.3, 0.3, 0.9, 0.3, 0.9, 0.6, 0.05, 0.45, 0.3, 0.45])
    probs = np.stack([p0, 1 - p0], axis=1)
    issues = confident.find_label_issues(labels, probs)
    assert issues.issue_indices.tolist() == [0, 1, 3, 5]
    assert issues.estimated_errors == 5
    assert issues.ranking[:5].tolist() == [0, 1, 3, 5, 7]

    listed = confident.suspects(issues, labels)

    assert listed.tolist() == [0, 1, 3, 5]
    assert (probs[listed].argmax(axis=1) != labels[listed]).all()


def test_error_share_interval_of_clean_confident_labels_is_near_zero():
    labels = np.repeat([0, 1, 2], 50)
    probs = np.full((150, 3), 0.05)
    probs[np.arange(150), labels] = 0.9
    share, low, high = confident.error_share_interval(labels, probs)
    assert share == 0.0
    assert low == 0.0
    # Not 0: no error found in 150 labels is consistent with up to 2.5 % wrong (Wilson). Every bootstrap resample of
    # a count of 0 is 0, and a search on 105 clean labels said "0.0 % (95 % interval 0.0 % to 0.0 %)".
    assert high == pytest.approx(0.0250, abs=0.0005)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        confident.find_label_issues(np.array([0, 2]), PROBS[:2])
    with pytest.raises(ValueError):
        confident.find_label_issues(LABELS, PROBS, ranking="vibes")


def test_recall_at_fraction():
    truth = np.zeros(20, dtype=bool)
    truth[[3, 7]] = True
    assert confident.recall_at_fraction(np.array([3, 1, 7, 0]), truth, 0.10) == (0.5, 0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_digits_with_five_percent_flips_beats_or_matches_cleanlab_ranking(seed):
    """Simulation: load_digits (raw pixels), 5 % random flips, 5-fold out-of-sample probabilities.

    The top 10 % of our ranking must recover at least as many flipped labels as the top 10 % of cleanlab's
    find_label_issues(..., return_indices_ranked_by="self_confidence") on the same probabilities.
    """
    from cleanlab.filter import find_label_issues as cleanlab_find
    from sklearn.datasets import load_digits

    features, clean = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    flipped = rng.random(len(clean)) < 0.05
    noisy = clean.copy()
    noisy[flipped] = (clean[flipped] + rng.integers(1, 10, flipped.sum())) % 10
    probs = confident.cross_val_pred_probs(features, noisy, n_classes=10, folds=5, C=0.05, seed=seed)

    ours = confident.find_label_issues(noisy, probs)
    theirs = cleanlab_find(noisy, probs, return_indices_ranked_by="self_confidence")
    our_recall, our_precision = confident.recall_at_fraction(ours.ranking, flipped)
    listed = confident.suspects(ours, noisy)  # what reviewers get
    list_recall, _ = confident.recall_at_fraction(listed, flipped)
    their_recall, _ = confident.recall_at_fraction(theirs, flipped)
    assert our_recall >= their_recall
    assert list_recall >= their_recall
    assert our_recall > 0.8
    assert our_precision > 0.4
    # The calibrated estimate of how many labels are wrong lands near the truth, inside its interval.
    assert abs(ours.estimated_errors - flipped.sum()) <= 0.3 * flipped.sum()
    share, low, high = confident.error_share_interval(noisy, probs, seed=seed)
    assert low <= flipped.mean() <= high
    assert low < share < high
    assert high - low < 0.05
    # Every listed label is one the model disagrees with.
    assert (probs[listed].argmax(axis=1) != noisy[listed]).all()


def test_neighbour_support_counts_the_classes_of_the_nearest_other_examples():
    features = np.array([[1.0, 0.0], [0.9, 0.1], [0.95, 0.05], [0.0, 1.0], [0.1, 0.9], [0.05, 0.95]])
    labels = np.array([0, 0, 1, 1, 1, 1])
    support = neighbour_support(features, labels, 2, k=2)
    # Example 2 sits among examples 0 and 1 (both 0); example 0's two nearest are 1 (class 0) and 2 (class 1)
    assert support[2].tolist() == [1.0, 0.0]
    assert support[0].tolist() == [0.5, 0.5]
    assert np.allclose(support.sum(1), 1.0)


def test_neighbour_blocks_stay_small_at_many_labels_and_give_the_same_neighbours():
    # Given 6,000 labels with 300-dimensional features (projected to 256 for the search)
    from training.ml.neighbours import BLOCK_CELLS

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, 6000)
    features = (np.eye(5)[labels] @ rng.normal(0, 1, (5, 300)) + rng.normal(0, 1.5, (6000, 300))).astype(np.float32)
    rows = rng.choice(6000, 500, replace=False)

    # When the support is computed in the automatic blocks, and in 2,048-row blocks (before: 3.3 GB at 100,000)
    auto = NeighbourSupport(features, labels, 5)
    wide = NeighbourSupport(features, labels, 5, block=2048)

    # Then a block's similarities stay within the cap, and every row gets the same neighbours' classes
    assert auto.block * len(labels) <= BLOCK_CELLS < 2048 * len(labels)
    assert np.array_equal(auto[rows], wide[rows])
    # ... of its true near neighbours: mostly its own class in these clusters
    assert (auto[rows][np.arange(500), labels[rows]] >= 0.5).mean() > 0.9


def test_the_search_computes_neighbours_only_for_the_labels_it_asks_about():
    # Given 3,000 labels in 3 well-separated clusters, 30 of them wrong, and out-of-sample probabilities that
    # disagree with the wrong ones
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 3000)
    features = np.eye(3)[truth] * 4 + rng.normal(0, 1, (3000, 3))
    given = truth.copy()
    wrong = rng.choice(3000, 30, replace=False)
    given[wrong] = (given[wrong] + 1) % 3
    probs = np.full((3000, 3), 0.05)
    probs[np.arange(3000), truth] = 0.9

    # When the search judges them with neighbours computed on demand, and with the whole table
    lazy = NeighbourSupport(features, given, 3)
    issues = confident.find_label_issues(given, probs, support=lazy)
    share = confident.error_share_interval(given, probs, seed=0, support=lazy)
    full = neighbour_support(features, given, 3)

    # Then the answers are the same
    assert np.array_equal(issues.backed, confident.find_label_issues(given, probs, support=full).backed)
    assert share == confident.error_share_interval(given, probs, seed=0, support=full)
    assert set(confident.suspects(issues, given).tolist()) == set(wrong.tolist())
    # ... and only the disagreements' rows were computed, not all 3,000 (the full table grows with the square)
    assert lazy.computed == 30
    assert np.array_equal(lazy[wrong], full[wrong])


def test_column_stats_match_numpy_and_standard_scaler_over_parts_never_joined():
    from sklearn.preprocessing import StandardScaler

    from training.ml.columns import column_stats

    # Given labeled and pool embeddings, a constant column among them, rows that do not fill the last block
    rng = np.random.default_rng(3)
    labeled = rng.normal(5.0, 2.0, (300, 40)).astype(np.float32)
    pool = rng.normal(4.0, 3.0, (700, 40)).astype(np.float32)
    labeled[:, 7] = pool[:, 7] = 1.25
    both = np.concatenate([labeled, pool])

    # When their statistics are computed in blocks, the parts apart
    mean, std = column_stats(labeled, pool, rows=64)

    # Then they are those of the rows together: numpy's, and the scale scikit-learn standardizes with
    ref = StandardScaler().fit(both)
    assert np.allclose(mean, both.mean(axis=0, dtype=np.float64), atol=1e-5)
    assert np.allclose(std, both.std(axis=0, dtype=np.float64), rtol=1e-5)
    assert np.allclose(std[std > 0], ref.scale_[std > 0], rtol=1e-5)
    assert std[7] == pytest.approx(0.0, abs=1e-6)


def test_the_cross_validation_holds_one_copy_of_a_training_part():
    import tracemalloc

    # Given 20,000 labels with 256-dimensional features (20 MB; at 100,000 x 1,280 it is 500 MB)
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 5, 20000)
    features = (np.eye(5)[labels] @ rng.normal(0, 1, (5, 256)) + rng.normal(0, 2, (20000, 256))).astype(np.float32)

    # When the search cross-validates them (after a small run, so that imports are not counted)
    confident.cross_val_pred_probs(features[:100], labels[:100], n_classes=5, folds=5, C=0.003)
    tracemalloc.start()
    try:
        probs = confident.cross_val_pred_probs(features, labels, n_classes=5, folds=5, C=0.003)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # Then its scratch memory is about one fold's training part (4/5 of the features), not the three copies that
    # StandardScaler and a scaled copy made (a float64 cast among them: 1.36 GB above the features at 100,000)
    assert peak < 1.5 * 0.8 * features.nbytes
    # ... and the folds still learn: the out-of-fold predictions mostly match the labels
    assert (probs.argmax(axis=1) == labels).mean() > 0.9


def test_a_lean_towards_another_class_is_not_listed_only_a_clear_disagreement_is():
    # Given 100 labels the out-of-sample model mostly agrees with (0.65), four it leans against (0.25 given, 0.75
    # other: odds 3) and four it clearly contradicts (0.1 given, 0.9 other: odds 9), all eight backed by neighbours
    from training.ml.label_search import MIN_ODDS, judge

    labels = np.repeat([0, 1], 50)
    own = np.full(100, 0.65)
    own[[0, 1, 50, 51]] = 0.25
    own[[2, 3, 52, 53]] = 0.1
    probs = np.where(labels[:, None] == np.arange(2)[None, :], own[:, None], 1 - own[:, None])
    support = np.zeros((100, 2))
    support[np.arange(100), labels] = 0.9
    support[np.arange(100), 1 - labels] = 0.1
    support[[0, 1, 2, 3, 50, 51, 52, 53]] = support[[0, 1, 2, 3, 50, 51, 52, 53]][:, ::-1]

    # When the search judges them
    verdict = judge(np.zeros((100, 4)), labels, probs, support=support)

    # Then only the clear contradictions are listed (before: all eight, the leans padding the list with false alarms)
    assert 0.75 / 0.25 < MIN_ODDS <= 0.9 / 0.1
    assert sorted(verdict.listed.tolist()) == [2, 3, 52, 53]

    # ... and a lean is listed where every one of the label's nearest labeled images carries the model's class
    support[[0, 50]] = support[[0, 50]].round()
    verdict = judge(np.zeros((100, 4)), labels, probs, support=support)
    assert sorted(verdict.listed.tolist()) == [0, 2, 3, 50, 52, 53]

"""The active-learning report's labels-to-X figures against curves worked out by hand."""

import numpy as np
import pytest

from bench.al_report import interpolated_labels

POINTS = [20, 40, 60, 80, 100, 300, 500]


def test_the_crossing_is_interpolated_between_the_grid_points_around_it():
    mean = np.array([0.50, 0.60, 0.65, 0.70, 0.72, 0.74, 0.76])
    # 0.73 lies halfway from 0.72 (100 labels) to 0.74 (300 labels): 200 labels, where the grid says 300.
    assert interpolated_labels(POINTS, mean, 0.73) == 200.0
    # A target met exactly on a grid point is that point.
    assert interpolated_labels(POINTS, mean, 0.70) == 80.0


def test_a_curve_that_starts_above_or_never_reaches_the_target():
    mean = np.array([0.50, 0.60, 0.65, 0.70, 0.72, 0.74, 0.76])
    assert interpolated_labels(POINTS, mean, 0.40) == 20.0
    assert interpolated_labels(POINTS, mean, 0.80) is None


def test_a_dip_after_the_first_crossing_does_not_move_it():
    mean = np.array([0.50, 0.66, 0.64, 0.70, 0.72, 0.74, 0.76])
    assert interpolated_labels(POINTS, mean, 0.62) == pytest.approx(35.0)  # 0.62 is 3/4 of the way from 0.50 to 0.66


def test_the_share_of_the_oracle_gap_is_the_default_gain_over_the_oracle_gain():
    from bench.al_report import _gap_closed

    rows = {"random": {"auc": 0.70}, "diverse_margin": {"auc": 0.72}, "oracle": {"auc": 0.75}}
    assert _gap_closed(rows) == pytest.approx(0.4)
    # No oracle in the run, or an oracle no better than random: no share to report.
    assert _gap_closed({k: v for k, v in rows.items() if k != "oracle"}) is None
    assert _gap_closed({**rows, "oracle": {"auc": 0.69}}) is None


def test_after_the_typicality_phase_the_oracle_asks_for_the_wrong_predictions_first():
    from bench.active_learning import DEFAULT, oracle_priority
    from training.ml.strategies import rank_pool, typical_phase_labels

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=40)
    truth = probs.argmax(1)
    wrong = [3, 17, 29]
    truth[wrong] = (truth[wrong] + 1) % 3
    view, labeled = rng.standard_normal((40, 8)), rng.standard_normal((typical_phase_labels(3), 8))
    ranked = np.argsort(-oracle_priority(probs, truth, view, labeled, 5, seed=1), kind="stable")
    assert sorted(ranked[:3].tolist()) == wrong
    # Within the phase, before it knows anything useful, it asks for what the default asks for.
    early = labeled[:2]
    assert np.array_equal(
        oracle_priority(probs, truth, view, early, 5, seed=1), rank_pool(DEFAULT, probs, view, early, 5, 1)
    )

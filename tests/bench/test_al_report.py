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

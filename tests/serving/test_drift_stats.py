"""The drift statistic (MMD, RBF kernel with the median heuristic, permutation p-value) on synthetic Gaussians:
samples of one distribution rarely look drifted, a shifted mean always does, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from serving.services.drift_stats import low_confidence_share, mmd_permutation_test


def gaussians(seed: int, *, n: int = 120, m: int = 200, dim: int = 32, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)) + shift, rng.normal(size=(m, dim))


def test_samples_of_one_distribution_give_p_values_that_are_not_small_in_most_seeds():
    # Given 20 pairs of samples drawn from the same 32-dimensional Gaussian
    # When each pair is tested with 200 permutations
    p_values = [mmd_permutation_test(*gaussians(seed), permutations=200, seed=seed).p_value for seed in range(20)]

    # Then p-values spread over (0, 1] as a valid test's do: few below 0.05, none at the floor, median near 0.5
    assert sum(p < 0.05 for p in p_values) <= 3, p_values
    assert min(p_values) > 1 / 201
    assert 0.2 < float(np.median(p_values)) < 0.8


@pytest.mark.parametrize("shift", [0.3, 1.0])
def test_a_shifted_mean_gives_the_smallest_p_value_in_every_seed(shift):
    # Given production samples whose mean moved by `shift` in every dimension
    results = [mmd_permutation_test(*gaussians(seed, shift=shift), permutations=200, seed=seed) for seed in range(5)]

    # Then every test is significant at 0.01 (no permutation reaches the observed statistic)
    assert [r.p_value for r in results] == [1 / 201] * 5
    same = [mmd_permutation_test(*gaussians(seed), permutations=200, seed=seed) for seed in range(5)]
    assert min(r.statistic for r in results) > max(r.statistic for r in same)


def test_the_test_is_seeded_subsamples_large_inputs_and_reports_progress():
    x, y = gaussians(7, n=300, m=900)
    seen = []
    first = mmd_permutation_test(x, y, permutations=60, seed=3, max_samples=250, progress=lambda d, t: seen.append(d))
    again = mmd_permutation_test(x, y, permutations=60, seed=3, max_samples=250)
    assert first == again
    assert (first.n_x, first.n_y, first.permutations) == (250, 250, 60)
    assert seen == [25, 50, 60]


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((5, 3)), np.zeros((5, 4)), "dimensions"),
        (np.zeros((1, 3)), np.zeros((5, 3)), "at least 2 samples"),
        (np.zeros(5), np.zeros((5, 1)), "2-D"),
        (np.full((5, 3), np.nan), np.zeros((5, 3)), "NaN"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(x, y, message):
    with pytest.raises(ValueError, match=message):
        mmd_permutation_test(x, y, permutations=10)


def test_identical_points_give_p_value_one():
    x = np.ones((10, 4))
    assert mmd_permutation_test(x, x.copy(), permutations=20).p_value == 1.0


def test_low_confidence_share_counts_predictions_below_the_threshold():
    assert low_confidence_share(np.array([0.2, 0.49, 0.5, 0.9]), 0.5) == 0.5
    assert low_confidence_share(np.array([]), 0.5) == 0.0

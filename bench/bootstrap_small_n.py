"""How often the holdout's nominal 95 % percentile bootstrap interval (training.ml.intervals) holds the true score,
by holdout size: the figures behind MIN_BOOTSTRAP_N. Prints ONE JSON object.

    nice .venv/bin/python bench/bootstrap_small_n.py
    nice .venv/bin/python bench/bootstrap_small_n.py --holdouts 300 --sizes 2,5,10,20

Three scores, each on simulated holdouts drawn from a population whose score is known:
- `mean`: the mean of normal values (the textbook case);
- `hamming`: a multi-label Hamming accuracy over 108 classes, each image's share of wrong cells drawn from
  Beta(0.8, 60) (most images near 1, a few much lower: skewed, as on the tester's multi-label project);
- `macro_f1`: a 4-class single-label macro-F1 at 80 % accuracy (errors uniform over the classes), against the
  population's macro-F1.
Each holdout gets the product's bootstrap (its resamples, its seed per holdout); coverage is the share of holdouts
whose interval holds the population's score. A degenerate interval (every resample the same) counts as a miss."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.ml.intervals import bootstrap_interval, mean_stat, single_label_macro_f1_stat  # noqa: E402

CLASSES, ACCURACY = 4, 0.8


def _macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    f1 = [2 * np.sum((y == k) & (pred == k)) / (np.sum(y == k) + np.sum(pred == k)) for k in range(CLASSES)]
    return float(np.mean(f1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdouts", type=int, default=1000, help="simulated holdouts per size")
    parser.add_argument("--sizes", default="2,5,10,15,20,30,40")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    def single_label(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, CLASSES, n)
        return y, np.where(rng.random(n) < ACCURACY, y, rng.integers(0, CLASSES, n))

    big_y, big_pred = single_label(1_000_000)
    scores = {
        "mean": (lambda n: mean_stat(rng.normal(size=n)), 0.0),
        "hamming": (lambda n: mean_stat(1 - rng.binomial(108, rng.beta(0.8, 60, n)) / 108), 1 - 0.8 / 60.8),
        "macro_f1": (lambda n: single_label_macro_f1_stat(*single_label(n), CLASSES), _macro_f1(big_y, big_pred)),
    }
    coverage: dict[str, dict[int, float]] = {name: {} for name in scores}
    for n in (int(v) for v in args.sizes.split(",")):
        for name, (draw, truth) in scores.items():
            held = 0
            for h in range(args.holdouts):
                bounds = bootstrap_interval(draw(n), n, seed=h)
                held += bounds is not None and bounds[0] < bounds[1] and bounds[0] <= truth <= bounds[1]
            coverage[name][n] = round(held / args.holdouts, 3)
    print(json.dumps({"holdouts": args.holdouts, "level": 0.95, "coverage": coverage}))


if __name__ == "__main__":
    main()

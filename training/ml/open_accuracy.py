"""How often the model is right on the images nobody has labeled yet, estimated from the labeled ones.

The out-of-fold accuracy over the labels (training.ml.heads.cross_val_head) answers "how often is a head right on
an image like the ones labeled". In a project labeled through the queue those are the images the model was least
sure of, so it reads far below the model on the rest: on the digits, 0.70 against 0.97 on the open images at 200
labels the queue asked for (bench/cv_estimate.py --picks queue).

This module matches confidence instead. On the labeled items, a one-dimensional logistic regression maps a fold
head's confidence (its top probability, on the logit scale) to the chance that its answer is right. The same fold
heads score a sample of the open images, and the estimate is the mean of that map over their confidences. It
assumes that at a given confidence a head is right as often on a queue pick as on an open image (the queue picks by
how unsure the model is, and the map conditions on that). The interval is a percentile bootstrap over the labeled
items, refitting the map each time; the open images' sample is taken as fixed.

bench/cv_estimate.py, the version's head scored on the images left open; mean |estimate - that| over the levels:
- labels the queue asked for (--picks queue): digits 3 draws at 100 / 200 / 400 labels, 2.6 points (out-of-fold
  accuracy: 22.1); CIFAR-10 3 draws at 100 / 200 / 400 / 1,000, 0.9 points (out-of-fold: 15.9);
- class-balanced random labels: digits 5 draws at 5 / 10 / 20 / 40 per class, 0.7 points (out-of-fold: 1.5).
Where it misses, it mostly reads low: each fold's head learns from 4/5 of the labels (digits, 100 and 200 queue
labels: -4.0 and -3.6 points), and its interval, which covers the sampling of the labels only, then misses too.
"""

from __future__ import annotations

import numpy as np

from stats.proportions import wilson_interval
from training.ml.intervals import MIN_BOOTSTRAP_N, widened_to_binomial

# Ridge on the slope of the confidence map, as scikit-learn's LogisticRegression(C=1.0) (the intercept is free).
SLOPE_L2 = 1.0


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def confidence_map(confidence: np.ndarray, correct: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(intercept, slope) of P(right) = sigmoid(intercept + slope * logit(confidence)), fitted by Newton's method
    with SLOPE_L2 on the slope. Needs both right and wrong answers among `correct`."""
    z = _logit(confidence)
    y = np.asarray(correct, dtype=np.float64)
    w = np.zeros(2)
    design = np.column_stack([np.ones_like(z), z])
    ridge = np.diag([0.0, SLOPE_L2])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + ridge @ w
        hess = (design * (p * (1 - p))[:, None]).T @ design + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def _estimate(confidence: np.ndarray, correct: np.ndarray, open_logits: np.ndarray) -> float:
    if correct.all() or not correct.any():
        return float(correct.mean())  # no wrong (or no right) answer to fit a map on: the labels' own share
    a, b = confidence_map(confidence, correct)
    return float(np.mean(1.0 / (1.0 + np.exp(-(a + b * open_logits)))))


def open_accuracy(
    oof_probs: np.ndarray,
    labels: np.ndarray,
    open_confidence: np.ndarray,
    *,
    level: float = 0.95,
    rounds: int = 200,
    seed: int = 0,
) -> dict | None:
    """{"accuracy", "low", "high", "n" (labeled items the map is fitted on), "images" (open images scored),
    "method" (of the interval: bootstrap, or wilson when every label, or none, came out right; None, and no
    interval, below MIN_BOOTSTRAP_N labels otherwise)}: the
    estimated accuracy on the open images. `oof_probs` [n, C] out-of-fold probabilities of the labeled items,
    `open_confidence` [folds, m] each fold head's top probability on m open images. None without open images or
    labels."""
    probs = np.asarray(oof_probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    conf_open = np.asarray(open_confidence, dtype=np.float64)
    if len(labels) == 0 or conf_open.size == 0:
        return None
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    open_logits = _logit(conf_open.ravel())
    value = _estimate(confidence, correct, open_logits)
    if correct.all() or not correct.any():
        # Nothing to fit a map on, nor to resample: the labels' own share with its Wilson interval.
        low, high = wilson_interval(int(correct.sum()), len(labels))
        images = int(conf_open.shape[-1])
        return {"accuracy": value, "low": low, "high": high, "n": len(labels), "images": images, "method": "wilson"}
    n = len(labels)
    if n < MIN_BOOTSTRAP_N:  # too few labels for a percentile bootstrap to mean anything (training.ml.intervals)
        images = int(conf_open.shape[-1])
        return {"accuracy": value, "low": None, "high": None, "n": n, "images": images, "method": None}
    rng = np.random.default_rng(seed)
    shares = np.empty(rounds)
    for r in range(rounds):
        pick = rng.integers(0, n, n)
        shares[r] = _estimate(confidence[pick], correct[pick], open_logits)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(shares, [tail, 100 - tail]) if rounds else (value, value)
    # Widened, where narrower, to the Wilson interval of the share of n it reads as: when every resample agrees (the
    # labels as sure as the open images all came out right) the bootstrap says [1.000, 1.000], which 275 labels
    # cannot show (stop 58: "accuracy 1.000 [1.000, 1.000] n = 275" on a page that gives 275 of 275 [0.986, 1]).
    low, high = widened_to_binomial(value, float(min(low, value)), float(max(high, value)), n)
    return {
        "accuracy": value,
        "low": float(low),
        "high": float(high),
        "n": n,
        "images": int(conf_open.shape[-1]),
        "method": "bootstrap",
    }

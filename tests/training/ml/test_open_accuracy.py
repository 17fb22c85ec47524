"""The estimated accuracy on the open images (training.ml.open_accuracy), against known answers."""

import numpy as np
import pytest

from training.ml.open_accuracy import confidence_map, open_accuracy


def probs_with(confidence: np.ndarray, correct: np.ndarray, labels: np.ndarray, classes: int = 3) -> np.ndarray:
    """Out-of-fold probabilities whose top class has `confidence` and is the label where `correct`."""
    n = len(labels)
    top = np.where(correct, labels, (labels + 1) % classes)
    out = np.full((n, classes), 0.0)
    out[np.arange(n), top] = confidence
    rest = (1 - confidence) / (classes - 1)
    for c in range(classes):
        out[:, c] = np.where(top == c, confidence, rest)
    return out


def calibrated_world(rng, n: int, a: float, b: float):
    """n labeled items whose head is right exactly as often as it is confident; confidence 0.35 + 0.64 Beta(a, b)."""
    confidence = 0.35 + 0.64 * rng.beta(a, b, n)
    correct = rng.random(n) < confidence
    labels = rng.integers(0, 3, n)
    return probs_with(confidence, correct, labels), labels


def test_the_map_recovers_a_known_relation_of_confidence_to_being_right():
    # Given answers that are right with probability sigmoid(0.5 + 1.5 * logit(confidence))
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.35, 0.99, 40_000)
    z = np.log(confidence / (1 - confidence))
    correct = rng.random(len(z)) < 1 / (1 + np.exp(-(0.5 + 1.5 * z)))

    intercept, slope = confidence_map(confidence, correct)

    assert intercept == pytest.approx(0.5, abs=0.06)
    assert slope == pytest.approx(1.5, abs=0.06)


def test_labels_on_unsure_images_do_not_drag_the_open_images_estimate_down():
    # Given labels the queue asked for: the head was mostly unsure of them (mean confidence 0.56), and right as
    # often as it was sure
    rng = np.random.default_rng(1)
    probs, labels = calibrated_world(rng, 400, 1.5, 3.0)
    # ... while on the open images the fold heads are mostly sure (mean 0.85)
    open_confidence = 0.35 + 0.64 * rng.beta(4.0, 1.2, (5, 3000))

    est = open_accuracy(probs, labels, open_confidence, seed=0)

    # Then the labels' own out-of-fold accuracy reads about 0.56, but the estimate on the open images is about
    # their mean confidence, which is how often a calibrated head is right there
    plain = (probs.argmax(1) == labels).mean()
    assert plain < 0.62
    assert est["accuracy"] == pytest.approx(open_confidence.mean(), abs=0.04)
    assert est["low"] < est["accuracy"] < est["high"]
    assert est["low"] <= open_confidence.mean() <= est["high"]
    assert est["n"] == 400
    assert est["images"] == 3000
    assert est["method"] == "bootstrap"


def test_labels_drawn_like_the_open_images_give_their_own_accuracy():
    # Given labeled and open images on which the heads are equally sure
    rng = np.random.default_rng(2)
    probs, labels = calibrated_world(rng, 500, 2.0, 2.0)
    open_confidence = probs.max(1)[None, :]  # the same confidences

    est = open_accuracy(probs, labels, open_confidence)

    # Then the estimate is the out-of-fold accuracy itself
    assert est["accuracy"] == pytest.approx((probs.argmax(1) == labels).mean(), abs=0.01)


def test_every_label_right_gives_the_wilson_interval():
    labels = np.array([0, 1, 2] * 8)
    probs = probs_with(np.full(24, 0.9), np.ones(24, dtype=bool), labels)

    est = open_accuracy(probs, labels, np.full((5, 10), 0.95))

    # 24 right of 24: 1.0 with the Wilson interval (0.86, 1.0), not a zero-width one
    assert est["accuracy"] == 1.0
    assert est["low"] == pytest.approx(0.862, abs=0.001)
    assert est["high"] == 1.0
    assert est["method"] == "wilson"


def test_no_open_images_no_estimate():
    labels = np.array([0, 1, 2, 0])
    probs = probs_with(np.full(4, 0.8), np.array([True, True, False, True]), labels)
    assert open_accuracy(probs, labels, np.zeros((5, 0))) is None
    assert open_accuracy(probs[:0], labels[:0], np.full((5, 3), 0.9)) is None


def test_a_bootstrap_where_every_resample_agrees_is_widened_to_what_n_labels_can_show():
    # Given 275 labels, the 4 wrong ones all unsure, and open images all as sure as the sure labels (stop 58: the model
    # page read "accuracy 1.000 [1.000, 1.000] n = 275")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 275)
    correct = np.arange(275) >= 4
    confidence = np.where(correct, 0.999, 0.40)
    open_confidence = np.full((5, 167), 0.999)

    out = open_accuracy(probs_with(confidence, correct, labels), labels, open_confidence)

    # Then the estimate is about 1, but its interval is no narrower than 275 of 275 right (Wilson: 0.986 to 1)
    assert out["method"] == "bootstrap"
    assert out["accuracy"] > 0.99
    assert out["low"] <= 0.9865, out
    assert out["high"] == pytest.approx(1.0)

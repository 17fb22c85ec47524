"""The export table's macro-F1 is the model page's: averaged over the classes present in the evaluation set, so a
file whose predictions equal the model's shows the model's figure (a holdout without class 6 read 0.854 in the
table against 0.949 on the model page, 0.949 x 9/10)."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.evaluate import evaluate
from training.ml.export_onnx import label_metrics

NAMES = [str(k) for k in range(10)]


def _onehot_probs(pred: list[int], classes: int) -> np.ndarray:
    return np.eye(classes)[pred] * 0.9 + 0.1 / classes


def test_single_label_macro_leaves_out_a_class_the_holdout_lacks():
    # given a 10-class holdout with no item of class 6, every item predicted right
    y = [k for k in range(10) if k != 6] * 2
    probs = _onehot_probs(y, 10)

    # when the export measures a file with those predictions
    metrics = label_metrics(probs, [[k] for k in y], multi_label=False)

    # then its macro-F1 is 1.0 (not 0.9, class 6 counted as 0) and accuracy is 1.0
    assert metrics == {"accuracy": 1.0, "macro_f1": 1.0}


@pytest.mark.parametrize("multi_label", [False, True])
def test_export_figures_equal_the_model_pages(multi_label):
    # given predictions with mistakes, on an evaluation set lacking classes 6 and 9
    rng = np.random.default_rng(0)
    present = [0, 1, 2, 3, 4, 5, 7, 8]
    if multi_label:
        labels = [sorted(rng.choice(present, size=rng.integers(1, 3), replace=False).tolist()) for _ in range(43)]
        probs = rng.uniform(0, 1, size=(43, 10))
    else:
        labels = [[int(rng.choice(present))] for _ in range(43)]
        probs = rng.dirichlet(np.ones(10), size=43)

    # when the export measures them
    metrics = label_metrics(probs, labels, multi_label=multi_label)

    # then accuracy and macro-F1 are what the model page shows for the same predictions
    page = evaluate(probs, labels, NAMES, multi_label=multi_label)
    assert metrics["accuracy"] == pytest.approx(page["accuracy"])
    assert metrics["macro_f1"] == pytest.approx(page["macro_f1"])


def test_multi_label_macro_leaves_out_a_label_never_present():
    # given three labels, the third on no item and predicted for none, the other two predicted right
    probs = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.9, 0.9, 0.1]])

    metrics = label_metrics(probs, [[0], [1], [0, 1]], multi_label=True)

    # then macro-F1 is 1.0 (not 2/3) and subset accuracy 1.0
    assert metrics == {"accuracy": 1.0, "macro_f1": 1.0}

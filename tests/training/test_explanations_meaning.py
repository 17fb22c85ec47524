"""Heatmaps that mean something: on digits pasted into one quadrant of a blank canvas (bench/explanations.py at a
small size), the model's Grad-CAM puts its mass in the digit's quadrant, and removing the most salient pixels
first lowers the class's probability faster than removing random pixels. The model is trained the way head mode
trains (bundled Lite0 embeddings of the image and its mirror, the product's head, saved as a full checkpoint) and
loaded back the way the worker loads it."""

from __future__ import annotations

import numpy as np
import pytest

from bench.explanations import pasted_digits, quadrant_masses, train_checkpoint

pytestmark = pytest.mark.slow  # trains a small model once for the module (about 15 s on 2 CPU cores)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    import torch

    from training.ml.explain import load_explainer

    torch.manual_seed(0)
    images, labels, _ = pasted_digits(100, seed=0)
    folder = tmp_path_factory.mktemp("pasted-digits-model")
    train_checkpoint(images, labels, folder, flip_average=True)
    explainer = load_explainer(folder)
    test_images, test_labels, quadrants = pasted_digits(16, seed=1)
    x = torch.stack([explainer.transform(image) for image in test_images])
    return explainer, x, test_labels, quadrants


def test_the_heatmap_points_at_the_pasted_digit(digits_model):
    from training.ml.explain import class_heatmaps
    from training.ml.models import MirrorAveraged

    # given: a model that averages each image with its mirror, and canvases with a digit in one quadrant
    explainer, x, labels, quadrants = digits_model
    assert isinstance(explainer.model, MirrorAveraged)
    # when: the heatmap of each image's true class is computed
    heats = class_heatmaps(explainer.model, x, labels.tolist())
    # then: the quadrant with most heat is the digit's for most images (chance: 1 in 4)
    assert heats.shape == (len(x), *x.shape[-2:])
    assert heats.min() >= 0.0
    assert heats.max() == pytest.approx(1.0)
    hits = np.mean([quadrant_masses(h).argmax() == q for h, q in zip(heats, quadrants, strict=True)])
    print(f"pointing game {hits:.2f}")
    assert hits >= 0.75, f"pointing game {hits:.2f}"


def test_removing_salient_pixels_lowers_the_score_faster_than_random(digits_model):
    import torch

    from training.ml.explain import class_heatmaps, deletion_auc, deletion_curve

    # given: the heatmaps, and "removing" a pixel = painting it the canvas's white
    explainer, x, labels, _ = digits_model
    norm = explainer.transform.transforms[-1]
    white = (1.0 - torch.as_tensor(norm.mean)) / torch.as_tensor(norm.std)
    heats = class_heatmaps(explainer.model, x[:5], labels[:5].tolist())
    rng = np.random.default_rng(0)
    salient, shuffled = [], []
    # when: pixels are removed most salient first, or in random order
    for i, heat in enumerate(heats):
        order = np.argsort(-heat.ravel(), kind="stable")
        curve = deletion_curve(explainer.model, x[i : i + 1], int(labels[i]), order, steps=5, baseline=white)
        salient.append(deletion_auc(curve))
        curve = deletion_curve(explainer.model, x[i : i + 1], int(labels[i]), rng.permutation(order.size), steps=5,
                               baseline=white)  # fmt: skip
        shuffled.append(deletion_auc(curve))
    # then: the class's probability falls faster along the heatmap's order
    print(f"deletion AUC salient {np.mean(salient):.3f}, random {np.mean(shuffled):.3f}")
    assert np.mean(salient) < np.mean(shuffled), (salient, shuffled)

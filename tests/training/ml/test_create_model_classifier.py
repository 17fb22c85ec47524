"""A fresh create_model starts its classifier at zero, whichever trainer calls it."""

from __future__ import annotations

import pytest
import torch

from training.ml import models


@pytest.mark.parametrize(
    ("arch", "weights"), [("tf_efficientnet_lite0", "bundled"), ("resnet10t", "none"), ("test_efficientnet", "none")]
)
def test_fresh_model_gives_every_class_the_same_logit(arch, weights):
    # Given a fresh 10-class model and a random image
    torch.manual_seed(0)
    model = models.create_model(arch, num_classes=10, weights=weights).eval()
    image = torch.rand(1, 3, 64, 64)

    # When it classifies the image
    with torch.inference_mode():
        logits = model(image)[0]

    # Then every class is equally likely (timm's own random classifier favours some class)
    assert logits.shape == (10,)
    assert torch.equal(logits, torch.full_like(logits, logits[0].item())), logits
    assert torch.allclose(logits.softmax(-1), torch.full((10,), 0.1))


def test_backbone_still_gives_features():
    # The feature extractor (no classifier) is unchanged: pooled features, not zeros
    backbone = models.create_backbone("tf_efficientnet_lite0", weights="bundled").eval()
    with torch.inference_mode():
        features = backbone(torch.rand(2, 3, 64, 64))
    assert features.shape == (2, 1280)
    assert features.abs().sum() > 0

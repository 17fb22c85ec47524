"""The heatmap's geometry: the overlay PNG has the image's display size (capped), the heat sits on the part of the
image the model saw (the eval transform's centre crop) and nothing outside it, and a mirror-averaged model's heatmap
of a mirrored image is the mirror of its heatmap."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from training.ml.explain import DISPLAY_MAX, crop_box, overlay_png


def rgba(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGBA"
    return np.asarray(image)


def test_overlay_is_the_display_size_and_transparent_outside_the_models_crop():
    # given: a heatmap hot in its top-left quarter, for a wide 1000 x 500 image (the model saw its centre square)
    heat = np.zeros((32, 32), dtype=np.float32)
    heat[:16, :16] = 1.0
    # when: the overlay is drawn
    pixels = rgba(overlay_png(heat, 1000, 500))
    # then: 256 px wide, the image's aspect kept
    assert pixels.shape[:2] == (128, DISPLAY_MAX)
    left, top, right, _ = (round(v * DISPLAY_MAX / 1000) for v in crop_box(1000, 500))
    assert (left, top, right) == (64, 0, 192)
    # and: nothing is drawn outside the crop, and the hot quarter is opaque-ish red where the heat is
    alpha = pixels[..., 3]
    assert alpha[:, :left].max() == 0
    assert alpha[:, right:].max() == 0
    assert alpha[10, left + 10] > 150
    assert pixels[10, left + 10, 0] > pixels[10, left + 10, 2]  # red, not blue
    assert alpha[100, right - 10] == 0  # the cold quarter stays clear


def test_a_small_image_keeps_its_size_and_an_empty_heatmap_is_fully_transparent():
    pixels = rgba(overlay_png(np.zeros((8, 8), dtype=np.float32), 32, 24))
    assert pixels.shape[:2] == (24, 32)
    assert pixels[..., 3].max() == 0


def test_mirror_averaged_heatmap_of_the_mirrored_image_is_the_mirrored_heatmap():
    import timm
    import torch

    from training.ml.explain import class_heatmaps
    from training.ml.models import MirrorAveraged

    # given: a small random CNN averaged over the image and its mirror, and an image with something on its left
    torch.manual_seed(0)
    model = MirrorAveraged(timm.create_model("test_efficientnet", num_classes=3).eval())
    x = torch.zeros(1, 3, 64, 64)
    x[:, :, 10:30, 4:24] = 2.0
    # when: heatmaps of the image and of its mirror are computed
    heat = class_heatmaps(model, x, 1)[0]
    mirrored = class_heatmaps(model, x.flip(-1), 1)[0]
    # then: one is the other's mirror, in 0..1
    assert heat.shape == (64, 64)
    assert heat.min() >= 0.0
    assert heat.max() <= 1.0
    np.testing.assert_allclose(mirrored, heat[:, ::-1], atol=1e-4)

"""Elongated images (panoramas, receipts, banners) reach the model whole: squashed to a square beyond 2:1, where the
plain centre crop kept only their middle. Training, the prediction service and the heatmap's box agree on it, and a
checkpoint from before the rule keeps the centre crop it was trained with."""

import pickle

import numpy as np
import pytest
from PIL import Image

from imaging.shape import SQUASH_ASPECT, SquashWide, squash
from serving.runtime.preprocess import to_input
from training.ml.config import RoundConfig
from training.ml.data import build_transform, round_transform
from training.ml.explain import crop_box

PRE = {"image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic", "crop_pct": 1.0}
DCFG = {"interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3}


def banner(width: int, height: int) -> Image.Image:
    """White, with a black mark filling the leftmost sixth: what a centre crop of a 3:1 image throws away."""
    pixels = np.full((height, width, 3), 255, dtype=np.uint8)
    pixels[:, : width // 6] = 0
    return Image.fromarray(pixels)


def dark_share(chw: np.ndarray) -> float:
    return float((chw.mean(axis=0) < 0).mean())  # normalized to [-1, 1]: below 0 is darker than mid-grey


@pytest.mark.parametrize("size", [(192, 64), (64, 192)])
def test_a_3_to_1_image_reaches_the_model_whole_in_training_and_in_the_prediction_service(size):
    image = banner(*size) if size[0] > size[1] else banner(*size[::-1]).rotate(90, expand=True)
    cfg = RoundConfig(image_size=32)
    trained = round_transform(DCFG, cfg, is_training=False)(image).numpy()
    # The mark (a sixth of the image) is a sixth of what the model sees; the centre crop saw none of it.
    assert dark_share(trained) == pytest.approx(1 / 6, abs=0.04)
    cropped = build_transform(DCFG, 32, is_training=False)(image).numpy()
    assert dark_share(cropped) == 0
    # The prediction service's numpy preprocessing gives the model the same input.
    served = to_input(image, {**PRE, "squash_aspect": SQUASH_ASPECT})
    np.testing.assert_allclose(served, trained, atol=0.02)


def test_photo_shapes_keep_the_centre_crop_and_old_checkpoints_keep_it_for_every_shape():
    photo = banner(48, 36)  # 4:3
    squashing = round_transform(DCFG, RoundConfig(image_size=32), is_training=False)
    np.testing.assert_array_equal(squashing(photo).numpy(), build_transform(DCFG, 32, is_training=False)(photo).numpy())
    # A checkpoint from before the rule records no squash_aspect: the service crops a 3:1 image as it was trained.
    wide = banner(192, 64)
    np.testing.assert_allclose(
        to_input(wide, PRE), build_transform(DCFG, 32, is_training=False)(wide).numpy(), atol=0.02
    )
    assert dark_share(to_input(wide, PRE)) == 0


def test_training_augmentation_squashes_too_and_the_step_survives_a_dataloader_worker():
    step = pickle.loads(pickle.dumps(SquashWide(2.0, 40)))
    assert step(banner(300, 100)).size == (40, 40)
    assert step(banner(120, 100)).size == (120, 100)  # within 2:1: left to the crop
    assert squash(banner(300, 100), None, 40).size == (300, 100)
    augmented = round_transform(DCFG, RoundConfig(image_size=32), is_training=True)
    assert isinstance(augmented.transforms[0], SquashWide)
    assert tuple(augmented(banner(300, 100)).shape) == (3, 32, 32)


def test_the_heatmap_covers_what_the_model_saw():
    assert crop_box(300, 100, 1.0, SQUASH_ASPECT) == (0, 0, 300, 100)  # squashed: the whole image
    assert crop_box(300, 100, 1.0, None) == (100, 0, 200, 100)  # an old checkpoint: the centre square
    assert crop_box(120, 100, 1.0, SQUASH_ASPECT) == (10, 0, 110, 100)  # a photo's shape: the centre square

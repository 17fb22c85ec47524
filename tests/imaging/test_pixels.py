"""Transparent and 16-bit images reach the model as people see them: training, scoring and serving decode them
through imaging.pixels, and a set of black icons on transparency is something the model can learn."""

import io

import numpy as np
import pytest
from PIL import Image

from serving.runtime.preprocess import image_decode, serving_limits
from tests.factories import icon_png
from training.ml.data import load_image


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(load_image(io.BytesIO(data)))


def test_black_icons_on_transparency_reach_the_model_as_black_drawings_on_white():
    data = icon_png("circle", np.random.default_rng(0))
    pixels = decoded(data)
    # Alpha dropped (Pillow's plain convert) this was a black square: every icon of the set the same picture.
    assert pixels.std() > 40
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert pixels.min() == 0
    # The prediction service decodes it the same way.
    np.testing.assert_array_equal(np.asarray(image_decode(data, limits=serving_limits()).image), pixels)


def test_white_icons_on_transparency_are_laid_on_black_so_they_stay_visible():
    pixels = decoded(icon_png("cross", np.random.default_rng(1), ink=(255, 255, 255)))
    assert tuple(pixels[0, 0]) == (0, 0, 0)
    assert pixels.max() == 255


def test_a_16_bit_scan_reaches_the_model_with_its_contrast():
    values = np.tile(np.linspace(1000, 4000, 64), (32, 1)).astype(np.uint16)  # 12-bit data in a 16-bit PNG
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    pixels = decoded(buffer.getvalue())
    # Clipped at 255 (Pillow's plain convert) every pixel was white.
    assert pixels[:, 0].max() < 10
    assert pixels[:, -1].min() > 245
    np.testing.assert_array_equal(np.asarray(image_decode(buffer.getvalue(), limits=serving_limits()).image), pixels)


@pytest.mark.slow
def test_the_model_tells_black_icons_on_transparency_apart(tmp_path):
    """Circles against crosses, black on transparency: the product's embeddings and head, 4 labels per class."""
    from training.ml.config import RoundConfig
    from training.ml.embeddings import EmbeddingStore
    from training.ml.heads import fit_head, predict_head

    rng = np.random.default_rng(5)
    paths, labels = [], []
    for n in range(24):
        kind = ("circle", "cross")[n % 2]
        path = tmp_path / f"{kind}-{n}.png"
        path.write_bytes(icon_png(kind, rng))
        paths.append(path)
        labels.append(n % 2)
    labels = np.array(labels)
    cfg = RoundConfig(image_size=64, num_workers=0, class_names=["circle", "cross"])
    store = EmbeddingStore(tmp_path / "cache")
    ids = list(range(1, 25))
    store.compute(ids, paths, cfg)
    emb = store.get(ids, cfg)
    assert np.abs(emb - emb[0]).max() > 1e-2, "every icon got the same embedding: the model sees no drawing"
    train = np.arange(8)
    fit = fit_head(emb[train], [[int(v)] for v in labels[train]], 2, seed=0)
    accuracy = float((predict_head(fit.head, emb[8:]).argmax(1) == labels[8:]).mean())
    assert accuracy >= 0.9, accuracy

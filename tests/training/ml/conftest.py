"""Tiny image sets for the ML tests: sklearn's 8x8 digits upscaled to RGB PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_digits(folder: Path, per_class: int, classes: tuple[int, ...] = (0, 1, 7)) -> list[tuple[int, str, int]]:
    """(id, path, class index) for `per_class` digits of each class in `classes`, as 32 px RGB PNGs."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for ci, digit in enumerate(classes):
        idx = np.nonzero(digits.target == digit)[0][:per_class]
        for k, i in enumerate(idx):
            arr = (digits.images[i] / 16.0 * 255).astype(np.uint8)
            img = Image.fromarray(arr).resize((32, 32), Image.NEAREST).convert("RGB")
            path = folder / f"d{digit}_{k}.png"
            img.save(path)
            rows.append((1000 * ci + k, str(path), ci))
    return rows


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> list[tuple[int, str, int]]:
    return write_digits(tmp_path_factory.mktemp("digits"), per_class=16)

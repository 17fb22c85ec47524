"""The benchmarks share one embedding cache keyed by item id: two image folders must never share an id."""

from pathlib import Path

import numpy as np
from PIL import Image

from bench.al_data import DIGITS_ID_OFFSET
from bench.common import TEST_ID_OFFSET, list_image_folder


def image_folder(root: Path, classes: dict[str, int]) -> Path:
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(root / name / f"{i:03d}.png")
    return root


def test_two_data_sets_with_the_same_layout_get_disjoint_ids_and_each_keeps_its_own_across_runs(tmp_path):
    # Given two data sets laid out alike (the same class names and file names), as two ImageFolders often are
    cifar = image_folder(tmp_path / "cifar" / "train", {"airplane": 5, "bird": 5})
    icons = image_folder(tmp_path / "icons" / "train", {"airplane": 5, "bird": 5})

    # When the benchmarks list them
    paths_a, ids_a, labels_a, classes_a = list_image_folder(cifar)
    _, ids_b, labels_b, _ = list_image_folder(icons)

    # Then no id of one names an image of the other (a shared cache would hand one set the other's embeddings)
    assert not set(ids_a.tolist()) & set(ids_b.tolist())
    assert len(set(ids_a.tolist())) == len(paths_a) == 10
    assert classes_a == ["airplane", "bird"]
    assert labels_a.tolist() == labels_b.tolist() == [0] * 5 + [1] * 5
    # And a second listing of the same folder gives the same ids, so reruns hit the cache
    assert list_image_folder(cifar)[1].tolist() == ids_a.tolist()
    assert list_image_folder(Path(str(cifar) + "/../train"))[1].tolist() == ids_a.tolist()  # the same folder
    # And a test split (offset) and the digits (small fixed ids) stay clear of them, within int64
    _, test_ids, _, _ = list_image_folder(cifar, id_offset=TEST_ID_OFFSET)
    assert not set(test_ids.tolist()) & set(ids_a.tolist())
    every = np.concatenate([ids_a, ids_b, test_ids])
    assert every.dtype == np.int64
    assert every.min() > DIGITS_ID_OFFSET + 10_000_000

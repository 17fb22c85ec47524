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


def test_every_format_the_product_imports_is_listed_sub_folders_included_and_hidden_files_left_out(tmp_path):
    # Given an ImageFolder as a held-out set may come: icons in several formats, a class with sub-folders, and what
    # a Mac leaves in a folder it zipped
    root = tmp_path / "icons" / "train"
    (root / "bell" / "outline").mkdir(parents=True)
    (root / "star" / ".thumbs").mkdir(parents=True)
    (root / ".hidden-class").mkdir()
    for name in ("a.webp", "b.GIF", "c.bmp", "outline/d.tiff", "outline/e.tif"):
        Image.new("RGB", (8, 8), (9, 9, 9)).save(root / "bell" / name)
    Image.new("RGB", (8, 8)).save(root / "star" / "1.png")
    Image.new("RGB", (8, 8)).save(root / "star" / ".thumbs" / "1.png")
    (root / "star" / "._1.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / "star" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "star" / "notes.txt").write_text("not an image")

    paths, ids, labels, classes = list_image_folder(root)

    # Then the images are the ones listed, each class's in path order, and nothing else
    assert classes == ["bell", "star"]
    names = [str(Path(p).relative_to(root)) for p in paths]
    bell = ["bell/a.webp", "bell/b.GIF", "bell/c.bmp", "bell/outline/d.tiff", "bell/outline/e.tif"]
    assert names == [*bell, "star/1.png"]
    assert labels.tolist() == [0] * 5 + [1]
    assert len(set(ids.tolist())) == 6

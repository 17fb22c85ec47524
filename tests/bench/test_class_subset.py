"""`bench/active_learning.py --classes a,b`: a few-class task cut from a bigger ImageFolder (the held-out shapes of
issue 16: a binary pair, a rare class), measured on exactly the images of those classes."""

import pytest

from bench.al_data import image_folder as al_image_folder
from bench.al_data import load
from bench.common import list_image_folder
from tests.bench.test_image_folder_ids import image_folder


@pytest.fixture
def animals(tmp_path):
    root = tmp_path / "animals"
    image_folder(root / "train", {"bird": 4, "cat": 6, "dog": 8})
    image_folder(root / "test", {"bird": 2, "cat": 3, "dog": 4})
    return root


def test_the_chosen_classes_keep_their_images_and_ids_and_are_numbered_from_zero(animals):
    # When a benchmark takes dog and cat out of three classes (named in any order)
    split = al_image_folder(animals, 10**9, 10**9, None, ["dog", "cat"])

    # Then it measures those two classes, in the folder's order, numbered 0 and 1
    assert split.classes == ["cat", "dog"]
    assert split.name == "animals[cat,dog]"
    assert sorted(split.pool_labels.tolist()) == [0] * 6 + [1] * 8
    assert sorted(split.test_labels.tolist()) == [0] * 3 + [1] * 4
    # And every image is one of theirs, with the label and id the whole folder gives it (so the cache is shared)
    paths, ids, labels, classes = list_image_folder(animals / "train")
    whole = {int(i): (p, classes[c]) for p, i, c in zip(paths, ids, labels, strict=True)}
    for path, item, label in zip(split.pool_paths, split.pool_ids, split.pool_labels, strict=True):
        assert whole[item] == (path, split.classes[label])
    assert not any("/bird/" in p for p in split.pool_paths + split.test_paths)


def test_a_long_tail_applies_to_the_chosen_classes(animals):
    split = al_image_folder(animals, 10**9, 10**9, (6, 2), ["cat", "dog"])

    assert split.name == "animals[cat,dog]-longtail"
    assert sorted(split.pool_labels.tolist()) == [0] * 6 + [1] * 2


@pytest.mark.parametrize(
    ("data", "only", "message"),
    [
        ("folder", ["cat", "horse"], r"has no class horse \(it has bird, cat, dog\)"),
        ("folder", ["cat"], "needs two classes or more"),
        ("digits", ["0", "1"], "--data digits is generated"),
    ],
)
def test_a_class_the_folder_lacks_or_a_single_class_is_refused_by_name(animals, tmp_path, data, only, message):
    with pytest.raises(SystemExit, match=message):
        load(str(animals) if data == "folder" else data, tmp_path / "cache", 10**9, 10**9, None, only)

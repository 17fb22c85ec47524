"""bench/active_learning.py --frames K: the pool as bursts of near-identical frames, the test set untouched."""

from pathlib import Path

import numpy as np
from PIL import Image

from bench.al_data import frames, load


def _folder(root: Path, per_class: int) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", 4)):
        for name in ("cat", "dog", "ship"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_each_chosen_pool_image_becomes_k_slightly_different_frames_of_its_class(tmp_path):
    split = load(str(_folder(tmp_path / "data", 20)), tmp_path / "cache", pool=60, test=12, long_tail=None)

    burst = frames(split, 3, tmp_path / "cache")

    assert burst.name == "data-frames3"
    assert len(burst.pool_ids) == 60  # 20 images x 3 frames: the pool keeps its size
    assert len(set(burst.pool_ids)) == 60
    assert not set(burst.pool_ids) & set(split.pool_ids)
    assert burst.test_ids == split.test_ids
    bursts: dict[str, list[tuple[str, int]]] = {}
    for path, label in zip(burst.pool_paths, burst.pool_labels, strict=True):
        bursts.setdefault(Path(path).stem.rsplit("-", 1)[0], []).append((path, int(label)))
    assert len(bursts) == 20
    assert all(len(b) == 3 and len({label for _, label in b}) == 1 for b in bursts.values())
    assert set(burst.pool_labels.tolist()) == {0, 1, 2}  # drawn from every class, not the first ones
    first, second = (np.asarray(Image.open(path), dtype=np.float32) for path, _ in next(iter(bursts.values()))[:2])
    assert first.shape == second.shape == (32, 32, 3)
    assert np.abs(first - second).mean() > 0  # frames differ
    # written once: a second call reads the same files
    assert frames(split, 3, tmp_path / "cache").pool_paths == burst.pool_paths

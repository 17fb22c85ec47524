"""Data sets for bench/active_learning.py: any ImageFolder with train/ and test/, a long-tailed variant of its
pool, and the demo's handwritten digits (line art on a plain background)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import TEST_ID_OFFSET, list_image_folder, subset

DIGITS_ID_OFFSET = 20_000_000


@dataclass
class Split:
    name: str
    classes: list[str]
    pool_ids: list[int]
    pool_paths: list[str]
    pool_labels: np.ndarray
    test_ids: list[int]
    test_paths: list[str]
    test_labels: np.ndarray


def long_tail_sizes(classes: int, largest: int, smallest: int) -> list[int]:
    """Class sizes falling geometrically from `largest` (first class) to `smallest` (last class)."""
    if classes == 1:
        return [largest]
    ratio = (smallest / largest) ** (1 / (classes - 1))
    return [max(1, round(largest * ratio**c)) for c in range(classes)]


def _long_tail(labels: np.ndarray, sel: np.ndarray, sizes: list[int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = []
    for c, size in enumerate(sizes):
        members = sel[labels[sel] == c]
        if len(members) < size:
            raise SystemExit(f"class {c} has {len(members)} images, the long tail asks for {size}")
        keep.append(np.sort(rng.choice(members, size=size, replace=False)))
    return np.sort(np.concatenate(keep))


def image_folder(root: Path, pool: int, test: int, long_tail: tuple[int, int] | None) -> Split:
    """`root/train/<class>/*` is the pool (a fixed subset of `pool`, or the long tail), `root/test` the test set."""
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise SystemExit(f"{root} needs train/<class>/ and test/<class>/ folders")
    paths, ids, labels, classes = list_image_folder(root / "train")
    if long_tail:
        sizes = long_tail_sizes(len(classes), *long_tail)
        sel = _long_tail(labels, np.arange(len(paths)), sizes, 12345)
    else:
        sel = subset(pool, len(paths), 12345)
    tpaths, tids, tlabels, tclasses = list_image_folder(root / "test", id_offset=TEST_ID_OFFSET)
    if tclasses != classes:
        raise SystemExit(f"train/ and test/ of {root} name different classes")
    tsel = subset(test, len(tpaths), 54321)
    name = root.name + ("-longtail" if long_tail else "")
    return Split(
        name, classes, [int(i) for i in ids[sel]], [paths[i] for i in sel], labels[sel],
        [int(i) for i in tids[tsel]], [tpaths[i] for i in tsel], tlabels[tsel],
    )  # fmt: skip


def _canvas(folder: Path, rows: list[tuple[str, int]], out: Path) -> list[str]:
    """Each digit shrunk to 32 px and pasted at a fixed random place on a 128 px white canvas: images that are
    mostly background and all look alike, like line art or icons on white."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(777)
    paths = []
    for name, _ in rows:
        x, y = (int(v) for v in rng.integers(0, 128 - 32, size=2))
        path = out / name
        if not path.exists():
            canvas = Image.new("L", (128, 128), 255)
            canvas.paste(Image.open(folder / name).convert("L").resize((32, 32), Image.Resampling.BICUBIC), (x, y))
            canvas.save(path)
        paths.append(str(path))
    return paths


def digits(cache: Path, test: int, long_tail: tuple[int, int] | None, canvas: bool = False) -> Split:
    """scikit-learn's 1,797 handwritten digits as `make demo` writes them (64 px, dark ink on white), or with
    `canvas` small on a big white canvas; a fixed stratified `test` of them is the test set, the rest the pool."""
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from labeling.management.commands.demo_setup import write_digits

    folder = cache / "digits-png"
    rows = write_digits(folder, None)
    labels = np.asarray([c for _, c in rows], dtype=np.int64)
    rng = np.random.default_rng(54321)
    per_class = max(1, test // 10)
    test_idx = np.sort(np.concatenate([rng.choice(np.nonzero(labels == c)[0], per_class, replace=False)
                                       for c in range(10)]))  # fmt: skip
    pool_idx = np.setdiff1d(np.arange(len(rows)), test_idx)
    if long_tail:
        pool_idx = _long_tail(labels, pool_idx, long_tail_sizes(10, *long_tail), 12345)
    offset = DIGITS_ID_OFFSET + (100_000 if canvas else 0)
    ids = [offset + i for i in range(len(rows))]
    paths = _canvas(folder, rows, cache / "digits-canvas-png") if canvas else [str(folder / n) for n, _ in rows]
    return Split(
        ("digits-canvas" if canvas else "digits") + ("-longtail" if long_tail else ""), [str(c) for c in range(10)],
        [ids[i] for i in pool_idx], [paths[i] for i in pool_idx], labels[pool_idx],
        [ids[i] for i in test_idx], [paths[i] for i in test_idx], labels[test_idx],
    )  # fmt: skip


def load(data: str, cache: Path, pool: int, test: int, long_tail: tuple[int, int] | None) -> Split:
    if data in ("digits", "digits-canvas"):
        return digits(cache, min(test, 500), long_tail, canvas=data == "digits-canvas")
    return image_folder(Path(data), pool, test, long_tail)

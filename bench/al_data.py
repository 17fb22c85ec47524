"""Data sets for bench/active_learning.py: any ImageFolder with train/ and test/, a long-tailed variant of its
pool, the demo's handwritten digits (line art on a plain background), `symbols` (drawn symbols on white,
long-tailed like the held-out line-art set of issue 16) and `glyphs100` (100 classes drawn the same way); any of
them as near-duplicate frames (`frames`)."""

from __future__ import annotations

import hashlib
import io
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


def only_classes(listing: tuple, wanted: list[str] | None, where: Path) -> tuple:
    """`listing` (list_image_folder's) cut to the classes in `wanted`, in the folder's order, labels renumbered from
    0; ids are kept, so a class subset shares the embedding cache with its whole folder."""
    paths, ids, labels, classes = listing
    if not wanted:
        return listing
    missing = sorted(set(wanted) - set(classes))
    if missing:
        raise SystemExit(f"{where} has no class {', '.join(missing)} (it has {', '.join(classes)})")
    kept = [c for c in classes if c in wanted]
    if len(kept) < 2:
        raise SystemExit(f"--classes needs two classes or more, got {', '.join(kept)}")
    old = np.asarray([classes.index(c) for c in kept])
    renumber = np.full(len(classes), -1, dtype=np.int64)
    renumber[old] = np.arange(len(old))
    mask = np.isin(labels, old)
    return [p for p, m in zip(paths, mask, strict=True) if m], ids[mask], renumber[labels[mask]], kept


def image_folder(
    root: Path, pool: int, test: int, long_tail: tuple[int, int] | None, only: list[str] | None = None
) -> Split:
    """`root/train/<class>/*` is the pool (a fixed subset of `pool`, or the long tail), `root/test` the test set;
    `only` keeps those classes of both."""
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise SystemExit(f"{root} needs train/<class>/ and test/<class>/ folders")
    paths, ids, labels, classes = only_classes(list_image_folder(root / "train"), only, root / "train")
    if long_tail:
        sizes = long_tail_sizes(len(classes), *long_tail)
        sel = _long_tail(labels, np.arange(len(paths)), sizes, 12345)
    else:
        sel = subset(pool, len(paths), 12345)
    tlisting = list_image_folder(root / "test", id_offset=TEST_ID_OFFSET)
    tpaths, tids, tlabels, tclasses = only_classes(tlisting, only, root / "test")
    if tclasses != classes:
        raise SystemExit(f"train/ and test/ of {root} name different classes")
    tsel = subset(test, len(tpaths), 54321)
    name = root.name + (f"[{','.join(classes)}]" if only else "") + ("-longtail" if long_tail else "")
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


# In the order their pool sizes fall (star 1,477 ... club 29).
SYMBOLS = {"star": "\u2605", "umbrella": "\u2602", "note": "\u266a", "plane": "\u2708", "sun": "\u263c",
           "anchor": "\u2693", "knight": "\u265e", "scissors": "\u2702", "phone": "\u260e", "heart": "\u2665",
           "house": "\u2302", "yinyang": "\u262f", "flag": "\u2691", "flower": "\u273f", "club": "\u2663"}  # fmt: skip
FACES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf")


def drawing_fonts(who: str) -> dict:
    """matplotlib's DejaVu Sans faces at the sizes _symbol draws with, keyed (face, size)."""
    import importlib.util

    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{who} draws with matplotlib's fonts; install matplotlib")
    ttf = Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"
    return {(f, s): ImageFont.truetype(str(ttf / f), s) for f in FACES for s in range(28, 72, 4)}


def symbol_drawings(per_class: int, seed: int, who: str):
    """`per_class` drawings of each of the 15 SYMBOLS (96 px RGB on white) and their class numbers."""
    fonts, rng = drawing_fonts(who), np.random.default_rng(seed)
    pictures, labels = [], []
    for c, ch in enumerate(SYMBOLS.values()):
        for _ in range(per_class):
            pictures.append(_symbol(ch, rng, fonts))
            labels.append(c)
    return pictures, np.asarray(labels)


def _symbol(ch: str, rng: np.random.Generator, fonts: dict):
    """One drawing: a face and size, outline or fill, dark ink, shifted, 0-2 stray pen strokes, rotated."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(img)
    face = FACES[rng.integers(len(FACES))]
    font = fonts[(face, int(rng.integers(7, 18)) * 4)]
    outline = rng.random() < 0.5
    dx, dy = rng.integers(-12, 13, size=2)
    ink = tuple(int(v) for v in rng.integers(0, 90, size=3))
    style = {"fill": ink}
    if outline:
        style = {"fill": "white", "stroke_width": int(rng.integers(1, 3)), "stroke_fill": ink}
    draw.text((48 + dx, 48 + dy), ch, font=font, anchor="mm", **style)
    for _ in range(int(rng.integers(0, 3))):
        p = rng.integers(0, 96, size=4)
        draw.line([tuple(p[:2]), tuple(p[2:])], fill=(150, 150, 150), width=1)
    return img.rotate(float(rng.uniform(-30, 30)), fillcolor="white", resample=Image.Resampling.BILINEAR)


# 100 classes for --data glyphs100: capitals, small letters, digits and signs, Greek, dingbats (those that differ
# from each other in DejaVu Sans; no I/l/1/O/0/o/c/s/... pairs a person could not tell apart at 96 px).
GLYPHS = (
    "ABCDEFGHJKLMNPQRSTUVXYZabdefghijkmnqrty23457&%$#@?!"
    "\u0393\u0394\u0398\u039b\u039e\u03a0\u03a3\u03a6\u03a8\u03a9\u03b1\u03b2\u03b3\u03b4\u03b6\u03b8\u03bb\u03be\u03c0\u03c3\u03c6\u03c8\u03c9"
    "\u2605\u2602\u266a\u2708\u263c\u2693\u265e\u2702\u260e\u2665\u2302\u262f\u2691\u273f\u2663\u2660\u2666\u263a\u2639\u266b"
    "\u2600\u2601\u2709\u270e\u2713\u2717"
)  # fmt: skip


def symbols(cache: Path, test: int) -> Split:
    """15 symbols drawn in matplotlib's DejaVu Sans faces (a dependency of grad-cam): a pool whose class sizes
    fall geometrically from 1,477 to 29 and a balanced test set of 60 per class, exact duplicates removed. Images
    that all look alike on a white page, with classes of very different sizes: the shape of the held-out set on
    which the issue-16 strategy lost to random. Written once under `cache/symbols-png`."""
    return _drawn(cache, "symbols", SYMBOLS, sizes=(1477, 29), per_test=60, seed=7, test=test)


def glyphs100(cache: Path, test: int) -> Split:
    """100 classes drawn the same way (GLYPHS, named c000-c099), the pool long-tailed from 150 to 10 per class,
    30 per class to test: many classes, few images of most, all alike. Written once under `cache/glyphs100-png`."""
    chars = {f"c{c:03d}": ch for c, ch in enumerate(GLYPHS)}
    return _drawn(cache, "glyphs100", chars, sizes=(150, 10), per_test=30, seed=11, test=test)


def _drawn(
    cache: Path, name: str, chars: dict[str, str], *, sizes: tuple[int, int], per_test: int, seed: int, test: int
):
    """`chars` (folder name -> character) drawn by _symbol: a pool whose class sizes fall geometrically from
    sizes[0] to sizes[1], `per_test` per class to test, no image twice. Written once under `cache/<name>-png`."""
    root = cache / f"{name}-png"
    if not (root / "complete").exists():
        fonts = drawing_fonts(f"--data {name}")
        rng, seen = np.random.default_rng(seed), set()
        train_sizes = long_tail_sizes(len(chars), *sizes)
        for split, counts in (("train", train_sizes), ("test", [per_test] * len(chars))):
            for (folder_name, ch), size in zip(chars.items(), counts, strict=True):
                folder = root / split / folder_name
                folder.mkdir(parents=True, exist_ok=True)
                made = 0
                while made < size:
                    buf = io.BytesIO()
                    _symbol(ch, rng, fonts).save(buf, "PNG")
                    digest = hashlib.sha1(buf.getvalue()).hexdigest()
                    if digest not in seen:
                        seen.add(digest)
                        (folder / f"{made:05d}.png").write_bytes(buf.getvalue())
                        made += 1
        (root / "complete").touch()
    split = image_folder(root, 10**9, test, None)
    split.name = name
    return split


def frames(split: Split, copies: int, cache: Path) -> Split:
    """The pool as `copies` frames of each of len(pool) / copies of its images, like bursts or video: each frame a
    slightly different crop (85-100 % of the side), exposure (+-10 %) and position of its image. The pool keeps
    its size with `copies` times fewer distinct images; the test set is unchanged. Written once under
    `cache/<name>-frames<copies>/train/<class>/`."""
    from PIL import Image, ImageEnhance

    if copies < 2:
        return split
    root = cache / f"{split.name}-frames{copies}"
    train = root / "train"
    if not (root / "complete").exists():
        for i in subset(len(split.pool_ids) // copies, len(split.pool_ids), 999):
            image = Image.open(split.pool_paths[i]).convert("RGB")
            w, h = image.size
            folder = train / split.classes[int(split.pool_labels[i])]
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(copies):
                rng = np.random.default_rng((4242, split.pool_ids[i], k))
                side = rng.uniform(0.85, 1.0)
                cw, ch = max(1, round(w * side)), max(1, round(h * side))
                x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                frame = image.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.BICUBIC)
                frame = ImageEnhance.Brightness(frame).enhance(float(rng.uniform(0.9, 1.1)))
                frame.save(folder / f"{split.pool_ids[i]}-{k}.png")
        (root / "complete").touch()
    paths, ids, labels, classes = list_image_folder(train)
    if classes != split.classes:  # a class with fewer than `copies` images has no frames
        raise SystemExit(f"{split.name}: every class needs at least {copies} pool images for --frames {copies}")
    return Split(f"{split.name}-frames{copies}", classes, [int(i) for i in ids], paths, labels,
                 split.test_ids, split.test_paths, split.test_labels)  # fmt: skip


def add_cut_arguments(ap) -> None:
    """--long-tail and --classes on an argparse parser (the benchmarks that read data through `load`)."""
    ap.add_argument("--long-tail", default="", help="MAX:MIN, e.g. 1000:20: class sizes fall geometrically")
    ap.add_argument("--classes", default="", help="a,b: only these classes of an ImageFolder's train/ and test/")


def cut(args) -> tuple[tuple[int, int] | None, list[str] | None]:
    """(long_tail, only) for `load`, from the arguments add_cut_arguments added."""
    long_tail = tuple(int(v) for v in args.long_tail.split(":")) if args.long_tail else None
    return long_tail, [c.strip() for c in args.classes.split(",") if c.strip()] or None


def load(
    data: str, cache: Path, pool: int, test: int, long_tail: tuple[int, int] | None, only: list[str] | None = None
) -> Split:
    drawn = {"symbols": symbols, "glyphs100": glyphs100}.get(data)
    if only and (drawn or data in ("digits", "digits-canvas")):
        raise SystemExit(f"--classes picks classes of an ImageFolder; --data {data} is generated")
    if data in ("digits", "digits-canvas"):
        return digits(cache, min(test, 500), long_tail, canvas=data == "digits-canvas")
    if drawn:
        if long_tail:
            raise SystemExit(f"--data {data} is long-tailed already; drop --long-tail")
        return drawn(cache, test)
    return image_folder(Path(data), pool, test, long_tail, only)

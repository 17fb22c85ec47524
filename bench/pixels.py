"""Transparent images: how much the model learns under each way of flattening alpha to RGB. Prints ONE JSON object.

    nice .venv/bin/python bench/pixels.py [--per-class 60] [--draws 5]

15 classes of drawn symbols (bench/al_data.py's `symbols` drawing) saved as transparent PNGs in four styles: black
ink whose transparent pixels are black too (how most icon sets are saved), white ink, ink of random colours, and
half of them on a white page. Each is embedded (Lite0 128 px, mirror-averaged, as the product does) after one of
four flattenings: alpha dropped (Pillow's plain convert, the old behaviour), on white, on mid-grey, and the
product's rule (imaging.pixels: white, or black for light drawings). The product's head is fitted on 5 and on 20
labels per class and scored on the rest; `accuracy[style][flattening][labels per class]` is the mean over draws."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import flip_averaged_embeddings, machine  # noqa: E402

STYLES = ("black ink, transparent pixels black", "white ink", "random colours", "half on a white page")
FLATTENINGS = ("alpha dropped", "on white", "on grey", "product rule")


def drawings(per_class: int):
    from bench.al_data import symbol_drawings

    pictures, labels = symbol_drawings(per_class, 3, "bench/pixels.py")
    alphas = [(255 - np.asarray(p.convert("L"), dtype=np.float32)).clip(0, 255).astype(np.uint8) for p in pictures]
    return alphas, labels, int(labels.max()) + 1  # ink opaque, page transparent


def picture(alpha: np.ndarray, style: str, n: int):
    from PIL import Image

    ink = {STYLES[0]: (0, 0, 0), STYLES[1]: (255, 255, 255), STYLES[3]: (20, 20, 20)}.get(style)
    if ink is None:
        ink = tuple(int(v) for v in np.random.default_rng(n).integers(0, 256, 3))
    rgba = np.zeros((*alpha.shape, 4), np.uint8)  # transparent pixels hold black
    rgba[alpha > 0, :3] = ink
    rgba[..., 3] = alpha
    image = Image.fromarray(rgba, "RGBA")
    if style == STYLES[3] and n % 2:
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    return image


def flatten(image, how: str):
    from PIL import Image

    from imaging.pixels import to_rgb

    if how == "alpha dropped":
        return image.convert("RGB")
    if how == "product rule":
        return to_rgb(image)
    base = Image.new("RGBA", image.size, (255, 255, 255, 255) if how == "on white" else (128, 128, 128, 255))
    return Image.alpha_composite(base, image).convert("RGB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from tqdm import tqdm

    from training.ml.data import build_transform
    from training.ml.heads import feature_stats, fit_head, predict_head
    from training.ml.models import create_backbone, data_config

    torch.set_num_threads(args.threads)
    alphas, labels, classes = drawings(args.per_class)
    backbone = create_backbone("tf_efficientnet_lite0", "bundled").eval()
    transform = build_transform(data_config(backbone), 128, is_training=False)
    accuracy: dict = {}
    t0 = time.monotonic()
    bar = tqdm(total=len(STYLES) * len(FLATTENINGS), desc="style x flattening", disable=not sys.stderr.isatty())
    for style in STYLES:
        accuracy[style] = {}
        for how in FLATTENINGS:
            x = flip_averaged_embeddings(
                backbone, [transform(flatten(picture(a, style, n), how)) for n, a in enumerate(alphas)]
            )
            stats = feature_stats(x)
            accuracy[style][how] = {}
            for k in (5, 20):
                scores = []
                for draw in range(args.draws):
                    order = np.random.default_rng(100 + draw).permutation(len(labels))
                    train = np.concatenate([order[labels[order] == c][:k] for c in range(classes)])
                    held = np.setdiff1d(order, np.concatenate([order[labels[order] == c][:20] for c in range(classes)]))
                    fit = fit_head(x[train], [[int(v)] for v in labels[train]], classes, stats=stats, seed=draw)
                    scores.append(float((predict_head(fit.head, x[held]).argmax(1) == labels[held]).mean()))
                accuracy[style][how][k] = round(float(np.mean(scores)), 3)
            bar.update()
    bar.close()
    worst = {how: min(accuracy[s][how][20] for s in STYLES) for how in FLATTENINGS}
    print(json.dumps({
        "accuracy": accuracy, "worst_style_accuracy_at_20": worst, "chance": round(1 / classes, 3),
        "images": len(labels), "classes": classes, "draws": args.draws, "seconds": round(time.monotonic() - t0, 1),
        "backbone": "tf_efficientnet_lite0 128 px, mirror-averaged", "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

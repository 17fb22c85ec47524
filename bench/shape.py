"""Non-square images: how much the model learns when it sees their centre square, all of them squashed, or the
product's rule (imaging.shape: centre square up to 2:1, squashed beyond). Prints ONE JSON object.

    nice .venv/bin/python bench/shape.py [--per-class 50] [--draws 5]

15 classes of drawn symbols (bench/al_data.py's `symbols` drawing, 96 px) pasted at a random place on white
canvases from square to 3:1, wide and tall, as a panorama, a receipt or a banner holds its subject anywhere along
its length. Each canvas set is embedded through the product's own eval transform (training.ml.data.round_transform,
Lite0 128 px, mirror-averaged) under each view; the product's head is fitted on 20 labels per class and scored on
the rest. `accuracy[canvas][view]` is the mean over draws; `worst_canvas_accuracy[view]` the lowest over canvases."""

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

CANVASES = ((96, 96), (128, 96), (192, 96), (240, 96), (288, 96), (96, 288))
# view -> RoundConfig.squash_aspect: None never squashes, 1.0 squashes every non-square image.
VIEWS = {"centre crop": None, "squash always": 1.0, "product rule": "default"}
LABELS_PER_CLASS = 20


def on_canvas(pictures, width: int, height: int):
    from PIL import Image

    rng = np.random.default_rng(9)
    out = []
    for picture in pictures:
        canvas = Image.new("RGB", (width, height), "white")
        x = int(rng.integers(0, width - picture.width + 1))
        y = int(rng.integers(0, height - picture.height + 1))
        canvas.paste(picture, (x, y))
        out.append(canvas)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from tqdm import tqdm

    from training.ml.config import RoundConfig
    from training.ml.data import round_transform
    from training.ml.heads import feature_stats, fit_head, predict_head
    from training.ml.models import create_backbone, data_config

    torch.set_num_threads(args.threads)
    from bench.al_data import symbol_drawings

    pictures, labels = symbol_drawings(args.per_class, 5, "bench/shape.py")
    classes = int(labels.max()) + 1
    backbone = create_backbone("tf_efficientnet_lite0", "bundled").eval()
    dcfg = data_config(backbone)
    accuracy: dict = {}
    t0 = time.monotonic()
    bar = tqdm(total=len(CANVASES) * len(VIEWS), desc="canvas x view", disable=not sys.stderr.isatty())
    for width, height in CANVASES:
        canvas = f"{width}x{height}"
        images = on_canvas(pictures, width, height)
        accuracy[canvas] = {}
        for view, aspect in VIEWS.items():
            cfg = RoundConfig(image_size=128, **({} if aspect == "default" else {"squash_aspect": aspect}))
            transform = round_transform(dcfg, cfg, is_training=False)
            x = flip_averaged_embeddings(backbone, [transform(image) for image in images])
            stats = feature_stats(x)
            scores = []
            for draw in range(args.draws):
                order = np.random.default_rng(100 + draw).permutation(len(labels))
                train = np.concatenate([order[labels[order] == c][:LABELS_PER_CLASS] for c in range(classes)])
                held = np.setdiff1d(order, train)
                fit = fit_head(x[train], [[int(v)] for v in labels[train]], classes, stats=stats, seed=draw)
                scores.append(float((predict_head(fit.head, x[held]).argmax(1) == labels[held]).mean()))
            accuracy[canvas][view] = round(float(np.mean(scores)), 3)
            bar.update()
    bar.close()
    worst = {view: min(accuracy[c][view] for c in accuracy) for view in VIEWS}
    print(json.dumps({
        "accuracy": accuracy, "worst_canvas_accuracy": worst, "labels_per_class": LABELS_PER_CLASS,
        "chance": round(1 / classes, 3), "images": len(labels), "classes": classes, "draws": args.draws,
        "squash_aspect": RoundConfig().squash_aspect, "seconds": round(time.monotonic() - t0, 1),
        "backbone": "tf_efficientnet_lite0 128 px, mirror-averaged", "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

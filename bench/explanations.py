"""Do the heatmaps point at the object? Digits pasted into one quadrant of a blank canvas, Grad-CAM of the model.

    .venv/bin/python bench/explanations.py --n 100

The scikit-learn digits (the demo's data), each scaled to 64 px and pasted, dark on white, into one random quadrant
of a 128 px white canvas. A model is trained the way head mode trains one (bundled EfficientNet-Lite0 embeddings,
mirror-averaged, the product's linear head `fit_head`), saved as a checkpoint (`save_checkpoint`: backbone + folded
head) and loaded back by `training.ml.explain.load_explainer`, the worker's path. On `--n` held-out canvases:

- pointing_game: share of images whose heatmap (for the true class) puts the most mass in the digit's quadrant;
  pointing_game_random: the same for random heatmaps (0.25 expected).
- deletion_auc_salient / deletion_auc_random: the true class's probability as pixels are whitened, most salient
  first vs in random order (area under the curve over the removed share; lower = the score falls faster), over
  the first `--deletion-n` images.

Prints ONE JSON object. Two CPU cores: about a minute at the defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402

ARCH = "tf_efficientnet_lite0"
CANVAS = 128
DIGIT = 64


def pasted_digits(n: int, seed: int):
    """(PIL images, digit labels, quadrant 0..3 = top-left, top-right, bottom-left, bottom-right) for n digits."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(digits.target), size=n, replace=n > len(digits.target))
    images, labels, quadrants = [], [], []
    for i in picks:
        ink = (255 - digits.images[i] * (255 / 16)).astype(np.uint8)
        glyph = Image.fromarray(ink, "L").resize((DIGIT, DIGIT), Image.BICUBIC)
        canvas = Image.new("L", (CANVAS, CANVAS), 255)
        q = int(rng.integers(4))
        canvas.paste(glyph, ((q % 2) * (CANVAS - DIGIT), (q // 2) * (CANVAS - DIGIT)))
        images.append(canvas.convert("RGB"))
        labels.append(int(digits.target[i]))
        quadrants.append(q)
    return images, np.asarray(labels), np.asarray(quadrants)


def train_checkpoint(images, labels, out: Path, *, flip_average: bool) -> None:
    """Head mode in miniature: embeddings of the bundled Lite0, the product's head, saved as a full checkpoint."""
    import torch

    from training.ml.checkpoint import head_model_state, save_checkpoint
    from training.ml.data import build_transform
    from training.ml.heads import fit_head
    from training.ml.models import create_backbone, data_config, flip_averaged

    backbone = create_backbone(ARCH).eval()
    dcfg = data_config(backbone)
    transform = build_transform(dcfg, CANVAS, is_training=False)
    feats = []
    with torch.inference_mode():
        for start in range(0, len(images), 64):
            x = torch.stack([transform(im) for im in images[start : start + 64]])
            feats.append((flip_averaged(backbone, x) if flip_average else backbone(x)).numpy())
    fit = fit_head(np.concatenate(feats), [[int(y)] for y in labels], 10)
    save_checkpoint(
        out,
        head_model_state(backbone, fit.head, ARCH),
        {"architecture": ARCH, "class_names": [str(d) for d in range(10)],
         "preprocessing": {"image_size": CANVAS, "mean": list(dcfg["mean"]), "std": list(dcfg["std"]),
                           "interpolation": dcfg.get("interpolation", "bicubic"), "crop_pct": 1.0,
                           "flip_average": flip_average}},
    )  # fmt: skip


def quadrant_masses(heat: np.ndarray) -> np.ndarray:
    """Heat mass per quadrant (4,), in the order of `pasted_digits`."""
    h, w = heat.shape
    top, bottom = heat[: h // 2], heat[h // 2 :]
    return np.array(
        [top[:, : w // 2].sum(), top[:, w // 2 :].sum(), bottom[:, : w // 2].sum(), bottom[:, w // 2 :].sum()]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="held-out canvases to explain")
    parser.add_argument("--train", type=int, default=500, help="canvases to train the head on")
    parser.add_argument("--deletion-n", type=int, default=30, help="images for the deletion test")
    parser.add_argument("--steps", type=int, default=10, help="deletion steps")
    parser.add_argument("--no-flip-average", action="store_true", help="train on plain (not mirrored) embeddings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from training.ml.explain import class_heatmaps, class_scores, deletion_auc, deletion_curve, load_explainer

    torch.manual_seed(args.seed)
    started = time.perf_counter()
    train_images, train_labels, _ = pasted_digits(args.train, args.seed)
    test_images, test_labels, test_quadrants = pasted_digits(args.n, args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        train_checkpoint(train_images, train_labels, Path(tmp), flip_average=not args.no_flip_average)
        train_seconds = time.perf_counter() - started
        explainer = load_explainer(tmp)
    x = torch.stack([explainer.transform(im) for im in test_images])
    accuracy = float((class_scores(explainer.model, x).argmax(1).numpy() == test_labels).mean())
    heats = np.concatenate(
        [class_heatmaps(explainer.model, x[s : s + 16], test_labels[s : s + 16].tolist()) for s in range(0, len(x), 16)]
    )
    rng = np.random.default_rng(args.seed)
    hits = [int(quadrant_masses(h).argmax() == q) for h, q in zip(heats, test_quadrants, strict=True)]
    random_hits = [
        int(quadrant_masses(rng.random(h.shape)).argmax() == q) for h, q in zip(heats, test_quadrants, strict=True)
    ]
    white = (1.0 - torch.as_tensor(explainer.transform.transforms[-1].mean)) / torch.as_tensor(
        explainer.transform.transforms[-1].std
    )
    salient, shuffled = [], []
    for i in range(min(args.deletion_n, len(x))):
        order = np.argsort(-heats[i].ravel(), kind="stable")
        salient.append(
            deletion_auc(
                deletion_curve(
                    explainer.model, x[i : i + 1], int(test_labels[i]), order, steps=args.steps, baseline=white
                )
            )
        )
        shuffled.append(
            deletion_auc(
                deletion_curve(
                    explainer.model,
                    x[i : i + 1],
                    int(test_labels[i]),
                    rng.permutation(order.size),
                    steps=args.steps,
                    baseline=white,
                )
            )
        )
    print(json.dumps({
        "pointing_game": round(float(np.mean(hits)), 4),
        "pointing_game_random": round(float(np.mean(random_hits)), 4),
        "deletion_auc_salient": round(float(np.mean(salient)), 4),
        "deletion_auc_random": round(float(np.mean(shuffled)), 4),
        "accuracy": round(accuracy, 4),
        "n": args.n,
        "train": args.train,
        "deletion_n": len(salient),
        "flip_average": not args.no_flip_average,
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

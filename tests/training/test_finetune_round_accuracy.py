"""A fine-tune round on the demo's digits is at least as good as the head round on the same labels.

The demo project's fine-tune rounds made versions with holdout accuracy 0.048 and 0.476 where the head on cached
embeddings had 0.714 (about 230 labels). Two things broke it: timm's fresh classifier (logits of std ~9 on Lite0's
features, a first loss of ~15 for 10 classes) and BatchNorm trained on batch statistics that are nothing like the
pretrained running statistics on dark strokes on white."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.ml.config import RoundConfig
from training.ml.pipeline import run_round

CLASSES = [str(d) for d in range(10)]


def demo_digits(folder: Path, count: int) -> list[tuple[int, str, int]]:
    """(id, path, digit) for scikit-learn's digits written as the demo writes them: 64 px grey PNGs, dark on white."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    order = np.random.default_rng(0).permutation(len(digits.target))[:count]
    for i in order:
        grey = (255 - digits.images[i] * (255 / 16)).clip(0, 255).astype("uint8")
        path = folder / f"{i:04d}.png"
        Image.fromarray(grey, "L").resize((64, 64), Image.Resampling.BICUBIC).save(path)
        rows.append((int(i), str(path), int(digits.target[i])))
    return rows


@pytest.mark.slow
def test_a_finetune_round_on_the_demo_digits_is_as_good_as_the_head_round(tmp_path):
    # Given the demo's digits, 230 labeled and 50 held out, 10 classes (chance: 0.1), as the tester's demo had
    rows = demo_digits(tmp_path / "digits", 290)
    labeled = [(i, p, [d]) for i, p, d in rows[:230]]
    holdout = [(i, p, [d]) for i, p, d in rows[230:280]]
    pool = [(i, p) for i, p, _ in rows[280:]]

    # When a head round and a fine-tune round (the bundled Lite0 at 64 px, the default 15 epochs, on the CPU) train
    accuracy = {}
    for mode in ("head", "finetune"):
        cfg = RoundConfig(mode=mode, image_size=64, num_workers=0, device="cpu", class_names=CLASSES)
        result = run_round(cfg, labeled, holdout, pool, tmp_path / "cache", tmp_path / mode)
        accuracy[mode] = result.metrics["accuracy"]

    # Then the fine-tuned version is far above chance and not clearly worse than the head's (within 5 of the 50
    # images: from run to run on the CPU the fine-tune scored 0.82 to 0.92 here, the head 0.88; the old code 0.06 to
    # 0.56 at 64 and 128 px)
    assert accuracy["head"] >= 0.7, accuracy
    assert accuracy["finetune"] >= 0.7, accuracy
    assert accuracy["finetune"] >= accuracy["head"] - 0.1, accuracy

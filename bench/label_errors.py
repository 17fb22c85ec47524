"""Label-error detection on CIFAR-10: Lite0 embeddings, 5 % injected label flips, cross-validated probabilities.

    .venv/bin/python bench/label_errors.py --data ../shared/datasets/cifar10 --noise 0.05

Takes a fixed subset of the training images (default 5,000), embeds them with EfficientNet-Lite0 at 128 px
through training.ml.embeddings (cached under var/bench-cache, shared with the other ML benchmarks), flips a
`--noise` share of the labels to a different random class, computes out-of-sample probabilities with 5-fold
cross-validation of a logistic-regression head (the product path, training.ml.confident), and compares the top
10 % of our ranking with the top 10 % of cleanlab's find_label_issues(..., ranked by self_confidence) on the same
probabilities. Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import list_image_folder, machine, subset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "cifar10")
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--n", type=int, default=5000, help="training images to use")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--C", type=float, default=0.003, help="inverse L2 strength of the logistic-regression head")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-cache")
    args = parser.parse_args()

    from cleanlab.filter import find_label_issues as cleanlab_find
    from tqdm import tqdm

    from training.ml.confident import cross_val_pred_probs, find_label_issues, recall_at_fraction
    from training.ml.config import RoundConfig
    from training.ml.embeddings import EmbeddingStore

    paths, ids, labels, classes = list_image_folder(args.data / "train")
    pick = subset(args.n, len(ids), args.seed)
    paths, ids, clean = [paths[i] for i in pick], ids[pick], labels[pick]

    cfg = RoundConfig(image_size=args.image_size, class_names=classes)
    store = EmbeddingStore(args.cache)
    started = time.monotonic()
    bar = tqdm(total=0, desc="embeddings", unit="img", disable=not sys.stderr.isatty())

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    computed = store.compute(ids.tolist(), paths, cfg, progress)
    bar.close()
    embed_seconds = time.monotonic() - started
    features = store.get(ids.tolist(), cfg)

    rng = np.random.default_rng(args.seed + 1)
    flipped = rng.random(len(clean)) < args.noise
    noisy = clean.copy()
    noisy[flipped] = (clean[flipped] + rng.integers(1, len(classes), int(flipped.sum()))) % len(classes)

    t0 = time.monotonic()
    probs = cross_val_pred_probs(features, noisy, n_classes=len(classes), folds=args.folds, C=args.C, seed=args.seed)
    cv_seconds = time.monotonic() - t0
    t0 = time.monotonic()
    ours = find_label_issues(noisy, probs)
    ours_seconds = time.monotonic() - t0
    theirs = cleanlab_find(noisy, probs, return_indices_ranked_by="self_confidence")

    recall, precision = recall_at_fraction(ours.ranking, flipped, 0.10)
    cl_recall, cl_precision = recall_at_fraction(theirs, flipped, 0.10)
    flagged_precision = float(flipped[ours.issue_indices].mean()) if len(ours.issue_indices) else None
    flagged_recall = float(flipped[ours.issue_indices].sum() / flipped.sum()) if flipped.any() else None
    print(
        json.dumps(
            {
                "bench": "label_errors",
                "images": len(ids),
                "noise": args.noise,
                "flipped": int(flipped.sum()),
                "image_size": args.image_size,
                "folds": args.folds,
                "C": args.C,
                "recall_at_10pct": round(recall, 4),
                "precision_at_10pct": round(precision, 4),
                "cleanlab_recall_at_10pct": round(cl_recall, 4),
                "cleanlab_precision_at_10pct": round(cl_precision, 4),
                "cleanlab_flagged": len(theirs),
                "flagged": len(ours.issue_indices),
                "flagged_precision": None if flagged_precision is None else round(flagged_precision, 4),
                "flagged_recall": None if flagged_recall is None else round(flagged_recall, 4),
                "cv_accuracy_vs_noisy_labels": round(float((probs.argmax(1) == noisy).mean()), 4),
                "cv_accuracy_vs_true_labels": round(float((probs.argmax(1) == clean).mean()), 4),
                "embeddings_computed": int(computed),
                "embed_seconds": round(embed_seconds, 2),
                "cv_seconds": round(cv_seconds, 2),
                "confident_learning_seconds": round(ours_seconds, 4),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()

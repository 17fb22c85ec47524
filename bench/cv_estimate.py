"""How far the model pages' cross-validated estimate lands from the model it stands for, at a new project's label
counts. Prints ONE JSON object.

    nice .venv/bin/python bench/cv_estimate.py --data digits --draws 5
    nice .venv/bin/python bench/cv_estimate.py --data ../shared/datasets/cifar10 --draws 3

For each labels-per-class level and draw, a class-balanced labeled set is drawn from the pool (`--data` as in
bench/active_learning.py; embeddings cached under var/bench-cache). Per level, the means over draws:
- `model`: the head a version trains on those labels (self-trained on the rest of the pool), scored on the test set;
- `estimate`: the product's cross-validated estimate (training.ml.heads.cross_val_head, the way the label-error
  search computes it: the project's head, each fold self-trained on up to CROSS_VALIDATED_POOL_MAX pool items);
- `estimate_plain_lr`: the estimate before stop 36 (a plain logistic regression, C = 0.003, no pool);
- `gap_pp` and `gap_plain_lr_pp`: estimate minus model, in points (negative: the page reads low).
`mean_abs_gap_pp` and `mean_abs_gap_plain_lr_pp` average |gap| over the levels.

The estimate on the open images (training.ml.open_accuracy, shown beside it since stop 37): `open_model` is the
version's head scored on the pool items left unlabeled, `open_estimate` the product's estimate of it, `open_gap_pp`
their difference and `estimate_open_gap_pp` the out-of-fold accuracy's (what the page offered before);
`mean_abs_open_gap_pp` and `mean_abs_estimate_open_gap_pp` average them. `--picks queue` labels the images the
product's default strategy asks for (bench/label_errors_queue.py's loop, batches of 20) instead of class-balanced
random draws; its levels are label counts (`--labels`), one labeled set per draw:

    nice .venv/bin/python bench/cv_estimate.py --data digits --draws 3 --picks queue
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="digits", help="an ImageFolder with train/ and test/, or digits / symbols")
    ap.add_argument("--pool", type=int, default=10000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--per-class", default="5,10,20,40", help="labels per class, one level each")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--picks", choices=("balanced", "queue"), default="balanced")
    ap.add_argument("--labels", default="100,200,400", help="with --picks queue: label counts, multiples of 20")
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-cache")
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    from bench.active_learning import _STATE, _embed, _init
    from bench.al_data import load
    from bench.label_errors_queue import queue_sets

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()  # the product's constants live beside the search that uses them
    from training.ml.confident import cross_val_pred_probs
    from training.ml.config import RoundConfig
    from training.ml.heads import cross_val_head, feature_stats, fit_head, predict_head
    from training.ml.open_accuracy import open_accuracy
    from training.services.label_errors import CROSS_VALIDATED_POOL_MAX, DEFAULT_C

    torch.set_num_threads(1)
    threadpool_limits(1)
    split = load(args.data, args.cache, args.pool, args.test, None)
    cfg = RoundConfig(class_names=split.classes)
    x, xt, _, _ = _embed(split, cfg, args.cache)
    y, yt = split.pool_labels, split.test_labels
    k = len(split.classes)
    stats = feature_stats(x)
    if args.picks == "queue":
        _init(x, y, xt, yt, stats, 1, k)
        levels = [int(v) for v in args.labels.split(",")]
        queues = [queue_sets(x, _STATE["xr"], y, levels, draw) for draw in range(args.draws)]
    else:
        levels = [int(v) for v in args.per_class.split(",")]
        levels = [p for p in levels if all((y == c).sum() > p for c in range(k))]
    bar = tqdm(total=len(levels) * args.draws, desc="draws", disable=not sys.stderr.isatty())
    out: dict[str, dict] = {}
    for level in levels:
        rows = []
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            if args.picks == "queue":
                lab = queues[draw][level]
            else:
                lab = np.concatenate([rng.choice(np.nonzero(y == c)[0], level, replace=False) for c in range(k)])
            rest = np.setdiff1d(np.arange(len(x)), lab)
            targets = [[int(v)] for v in y[lab]]
            model = fit_head(x[lab], targets, k, stats=stats, unlabeled=x[rest], seed=draw)
            truth = float((predict_head(model.head, xt).argmax(1) == yt).mean())
            open_truth = float((predict_head(model.head, x[rest]).argmax(1) == y[rest]).mean())
            t = time.monotonic()
            sample = x[np.sort(rng.choice(rest, size=min(len(rest), CROSS_VALIDATED_POOL_MAX), replace=False))]
            cv = cross_val_head(x[lab], y[lab], k, folds=args.folds, seed=draw, unlabeled=sample)
            opened = open_accuracy(cv.probs, y[lab], cv.unlabeled_confidence, seed=draw)
            seconds = time.monotonic() - t
            estimate = float((cv.probs.argmax(1) == y[lab]).mean())
            plain = cross_val_pred_probs(x[lab], y[lab], k, folds=args.folds, C=DEFAULT_C, seed=draw)
            plain_acc = float((plain.argmax(1) == y[lab]).mean())
            covered = opened["low"] <= open_truth <= opened["high"]
            rows.append((truth, estimate, plain_acc, seconds, open_truth, opened["accuracy"], covered))
            bar.update()
        m = np.mean(rows, axis=0)
        out[str(level)] = {
            "labels": len(lab),
            "model": round(float(m[0]), 4),
            "estimate": round(float(m[1]), 4),
            "estimate_plain_lr": round(float(m[2]), 4),
            "gap_pp": round(100 * float(m[1] - m[0]), 2),
            "gap_plain_lr_pp": round(100 * float(m[2] - m[0]), 2),
            "estimate_seconds": round(float(m[3]), 2),
            "open_model": round(float(m[4]), 4),
            "open_estimate": round(float(m[5]), 4),
            "open_gap_pp": round(100 * float(m[5] - m[4]), 2),
            "estimate_open_gap_pp": round(100 * float(m[1] - m[4]), 2),
            "open_interval_covers": round(float(m[6]), 3),
        }
    bar.close()
    gaps = [abs(v["gap_pp"]) for v in out.values()]
    plain_gaps = [abs(v["gap_plain_lr_pp"]) for v in out.values()]
    open_gaps = [abs(v["open_gap_pp"]) for v in out.values()]
    estimate_open_gaps = [abs(v["estimate_open_gap_pp"]) for v in out.values()]
    print(
        json.dumps(
            {
                "data": split.name,
                "classes": k,
                "draws": args.draws,
                "folds": args.folds,
                "pool_max": CROSS_VALIDATED_POOL_MAX,
                "levels": out,
                "mean_abs_gap_pp": round(float(np.mean(gaps)), 2) if gaps else None,
                "mean_abs_gap_plain_lr_pp": round(float(np.mean(plain_gaps)), 2) if plain_gaps else None,
                "picks": args.picks,
                "mean_abs_open_gap_pp": round(float(np.mean(open_gaps)), 2) if open_gaps else None,
                "mean_abs_estimate_open_gap_pp": (
                    round(float(np.mean(estimate_open_gaps)), 2) if estimate_open_gaps else None
                ),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()

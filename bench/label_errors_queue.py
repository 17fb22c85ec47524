"""The label-error search on labels the queue asked for, against labels drawn at random. Prints ONE JSON object.

    nice .venv/bin/python bench/label_errors_queue.py --data digits --seeds 3
    nice .venv/bin/python bench/label_errors_queue.py --data ../shared/datasets/cifar10 --seeds 2 --points 400,1000

The queue's labels are the images the product's default strategy asks for (bench/active_learning.py's loop: its
cold start, then batches of 20 picked with the product's head); the random ones a uniform draw of the same size.
Each labeled set is judged twice: with every label right, and with `--noise` of them turned into another class. The
search is the product's (training.ml.confident: 5-fold logistic regression, confident learning, suspects; classes
under 20 labels left out, the agreement gate), with and without the neighbours' backing (`support`).
Per way of picking and label count, summed over seeds: `false_suspects` (every label right: each suspect is a false
alarm), and with noise `suspects`, `real` (suspects that are wrong labels), `wrong` (wrong labels judged),
`precision` and `recall`; `*_unbacked` the same without the neighbours.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402


def queue_sets(x, xr, y, points: list[int], seed: int) -> dict[int, np.ndarray]:
    """The labeled items after each count in `points`, as the default strategy asks for them, 20 per batch."""
    from bench.active_learning import fit_round
    from training.ml.heads import predict_head
    from training.ml.strategies import rank_pool

    order = np.argsort(-rank_pool("diverse_margin", None, xr, None, 20, seed), kind="stable")
    labeled, out = list(order[:20]), {}
    while len(labeled) < max(points):
        lab, unl, fit, _ = fit_round(labeled, seed)
        prio = rank_pool("diverse_margin", predict_head(fit.head, x[unl]), xr[unl], xr[lab], 20, seed + len(labeled))
        labeled += list(unl[np.argsort(-prio, kind="stable")[:20]])
        if len(labeled) in points:
            out[len(labeled)] = np.asarray(labeled)
    return out


def judge_set(features: np.ndarray, given: np.ndarray, classes: int, backed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(judged mask, suspect indices into the judged labels): the product's search on one labeled set (the classes
    it judges, its cross-validation, training.ml.label_search.judge)."""
    from training.ml.confident import cross_val_pred_probs
    from training.ml.label_search import DEFAULT_C, MIN_LABELS_PER_CLASS, REPEATS, judge

    counts = np.bincount(given, minlength=classes)
    judged = np.nonzero(counts >= MIN_LABELS_PER_CLASS)[0]
    keep = np.isin(given, judged)
    if len(judged) < 2:
        return keep, np.zeros(0, dtype=np.int64)
    remap = np.full(classes, -1)
    remap[judged] = np.arange(len(judged))
    y = remap[given[keep]]
    probs = cross_val_pred_probs(
        features[keep], y, n_classes=len(judged), folds=5, C=DEFAULT_C, seed=0, repeats=REPEATS
    )
    return keep, judge(features[keep], y, probs, backed=backed).listed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="digits")
    ap.add_argument("--pool", type=int, default=10000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--points", default="200,400,800")
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-cache")
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    from bench.active_learning import _STATE, _embed, _init
    from bench.al_data import load
    from training.ml.config import RoundConfig
    from training.ml.heads import feature_stats

    torch.set_num_threads(1)
    threadpool_limits(1)
    split = load(args.data, args.cache, args.pool, 2000, None)
    x, xt, _, _ = _embed(split, RoundConfig(class_names=split.classes), args.cache)
    y, k = split.pool_labels, len(split.classes)
    _init(x, y, xt, split.test_labels, feature_stats(x), 1, k)
    points = [int(v) for v in args.points.split(",")]
    sums: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    bar = tqdm(total=args.seeds * len(points) * 2, desc="labeled sets", disable=not sys.stderr.isatty())
    for seed in range(args.seeds):
        rng = np.random.default_rng(100 + seed)
        sets = queue_sets(x, _STATE["xr"], y, points, seed)
        for n in points:
            for how, idx in (("queue", sets[n]), ("random", rng.choice(len(x), n, replace=False))):
                truth = y[idx]
                noisy = truth.copy()
                flip = rng.random(n) < args.noise
                noisy[flip] = (noisy[flip] + rng.integers(1, k, flip.sum())) % k
                row = sums[f"{how}_{n}"]
                for backed, tag in ((True, ""), (False, "_unbacked")):
                    _, listed = judge_set(x[idx], truth, k, backed)
                    row["false_suspects" + tag] += len(listed)
                    keep, listed = judge_set(x[idx], noisy, k, backed)
                    wrong = (noisy != truth)[keep]
                    row["suspects" + tag] += len(listed)
                    row["real" + tag] += int(wrong[listed].sum())
                    row["wrong" + tag] += int(wrong.sum())
                bar.update()
    bar.close()
    out = {}
    for key, row in sums.items():
        for tag in ("", "_unbacked"):
            real, listed, wrong = row["real" + tag], row["suspects" + tag], row["wrong" + tag]
            row["precision" + tag] = round(real / listed, 3) if listed else None
            row["recall" + tag] = round(real / wrong, 3) if wrong else None
        out[key] = dict(row)
    print(json.dumps({"data": split.name, "seeds": args.seeds, "noise": args.noise, "sets": out, "machine": machine()}))


if __name__ == "__main__":
    main()

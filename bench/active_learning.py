"""Active-learning efficiency on CIFAR-10: oracle annotators label what each strategy asks for, through the
product's own code (EmbeddingStore, fit_head, rank_pool). Prints ONE JSON object.

    nice .venv/bin/python bench/active_learning.py --data ../shared/datasets/cifar10 --pool 10000 --seeds 3

Embeddings (Lite0, bundled weights, 128 px) are cached under var/bench-cache, so reruns skip the backbone."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import TEST_ID_OFFSET, list_image_folder, machine, subset  # noqa: E402

STRATEGIES = ("random", "least_confidence", "margin", "entropy", "kcenter", "diverse_margin")
DEFAULT = "diverse_margin"

_STATE: dict = {}


def schedule(start: int, fine_step: int, fine_until: int, coarse_step: int, until: int) -> list[int]:
    points = list(range(start, fine_until + 1, fine_step))
    points += list(range(points[-1] + coarse_step, until + 1, coarse_step))
    return points


def _init(x, y, xt, yt, stats, threads):
    import torch
    from threadpoolctl import threadpool_limits

    from training.ml.strategies import reduce_dim

    torch.set_num_threads(threads)
    # numpy's BLAS threads on top of torch's and of the other worker oversubscribe 2 cores badly.
    _STATE["limits"] = threadpool_limits(threads)
    # rank_pool projects embeddings to 128-d with a fixed random projection each call; the projection is
    # linear and row-wise, so projecting the pool once here gives identical selections, minus a second a round.
    _STATE.update(x=x, xr=reduce_dim(x, None)[0], y=y, xt=xt, yt=yt, stats=stats)


def simulate(strategy: str, seed: int, points: list[int]) -> dict:
    """One learning curve: accuracy on the test subset after each labeling step."""
    from training.ml.heads import fit_head, predict_head
    from training.ml.strategies import rank_pool

    x, xr, y, xt, yt, stats = (_STATE[k] for k in ("x", "xr", "y", "xt", "yt", "stats"))
    n = len(x)
    rng = np.random.default_rng(seed)
    if strategy == DEFAULT:
        # The product's cold start: no model yet, typical + diverse picks on pretrained embeddings.
        order = np.argsort(-rank_pool(strategy, None, xr, None, points[0], seed))
        labeled = list(order[: points[0]])
    else:
        labeled = list(rng.choice(n, size=points[0], replace=False))  # classic baselines start at random
    accs, secs = [], []
    for i, target in enumerate(points):
        t = time.monotonic()
        lab = np.asarray(labeled)
        mask = np.ones(n, dtype=bool)
        mask[lab] = False
        unl = np.nonzero(mask)[0]
        # The product's head for every strategy: fitted on the labels, self-trained on the unlabeled pool.
        fit = fit_head(x[lab], [[int(v)] for v in y[lab]], 10, stats=stats, seed=seed, unlabeled=x[unl])
        accs.append(float((predict_head(fit.head, xt).argmax(1) == yt).mean()))
        if i + 1 < len(points):
            step = points[i + 1] - target
            probs = predict_head(fit.head, x[unl]) if strategy != "random" else np.full((len(unl), 10), 0.1)
            prio = rank_pool(strategy, probs, xr[unl], xr[lab], step, seed + 1000 * i)
            labeled += list(unl[np.argsort(-prio, kind="stable")[:step]])
        secs.append(time.monotonic() - t)
    return {"strategy": strategy, "seed": seed, "accs": accs, "seconds": float(np.mean(secs))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "cifar10")
    ap.add_argument("--pool", type=int, default=10000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-labels", type=int, default=4000)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-cache")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument(
        "--no-flip-average", dest="flip_average", action="store_false",
        help="plain embeddings instead of the product default (each image averaged with its mirror)",
    )  # fmt: skip
    args = ap.parse_args()

    from tqdm import tqdm

    from training.ml.config import RoundConfig
    from training.ml.embeddings import EmbeddingStore
    from training.ml.heads import PSEUDO_THRESHOLD, feature_stats, fit_head, predict_head

    paths, ids, labels, classes = list_image_folder(args.data / "train")
    sel = subset(args.pool, len(paths), 12345)
    tpaths, tids, tlabels, _ = list_image_folder(args.data / "test", id_offset=TEST_ID_OFFSET)
    tsel = subset(args.test, len(tpaths), 54321)
    cfg = RoundConfig(class_names=classes, image_size=args.image_size, flip_average=args.flip_average)
    store = EmbeddingStore(args.cache)
    t = time.monotonic()
    all_ids = [int(i) for i in ids[sel]] + [int(i) for i in tids[tsel]]
    all_paths = [paths[i] for i in sel] + [tpaths[i] for i in tsel]
    bar = tqdm(total=0, desc="embeddings", unit="img", disable=not sys.stderr.isatty())

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    computed = store.compute(all_ids, all_paths, cfg, progress)
    bar.close()
    embed_s = time.monotonic() - t
    x = store.get([int(i) for i in ids[sel]], cfg)
    xt = store.get([int(i) for i in tids[tsel]], cfg)
    y, yt = labels[sel], tlabels[tsel]
    stats = feature_stats(x)

    t = time.monotonic()
    full = fit_head(x, [[int(v)] for v in y], 10, stats=stats)
    ceiling = float((predict_head(full.head, xt).argmax(1) == yt).mean())
    ceiling_fit_s = time.monotonic() - t

    points = schedule(20, 20, min(1000, args.max_labels), 200, args.max_labels)
    names = [s for s in args.strategies.split(",") if s]
    jobs = [(s, seed) for seed in range(args.seeds) for s in names]
    sims = tqdm(total=len(jobs), desc="simulations (strategy x seed)", disable=not sys.stderr.isatty())
    if args.processes <= 1:
        _init(x, y, xt, yt, stats, 1)
        runs = []
        for s, seed in jobs:
            runs.append(simulate(s, seed, points))
            sims.update()
    else:
        # spawn, not fork: a forked child inherits the parent's OpenMP pool and crawls with > 1 thread.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            args.processes, mp_context=ctx, initializer=_init, initargs=(x, y, xt, yt, stats, 1)
        ) as ex:
            runs = []
            for run in ex.map(simulate, *zip(*jobs, strict=True), [points] * len(jobs)):
                runs.append(run)
                sims.update()
    sims.close()

    out = {
        "benchmark": "active_learning",
        "dataset": "cifar10",
        "pool": len(x),
        "test": len(xt),
        "seeds": args.seeds,
        "backbone": "tf_efficientnet_lite0 (bundled weights)",
        "image_size": args.image_size,
        "flip_average": cfg.flip_average,
        "head": f"linear, L2={full.l2}, class-balanced, standardized, self-trained on pool items predicted with"
        f" p >= {PSEUDO_THRESHOLD}",
        "ceiling_accuracy": round(ceiling, 4),
        "default": DEFAULT,
        "embedding_seconds": round(embed_s, 1),
        "embeddings_computed": computed,
        "ceiling_fit_seconds": round(ceiling_fit_s, 2),
        "strategies": {},
        "machine": machine(),
        "note": "2 shared cores, niced; seconds are wall time under other engineers' load",
    }
    fine = [i for i, p in enumerate(points) if p <= 1000]
    for name in names:
        curves = np.array([r["accs"] for r in runs if r["strategy"] == name])
        mean, std = curves.mean(0), curves.std(0)

        def first_reaching(frac: float, mean=mean) -> int | None:
            hit = np.nonzero(mean >= frac * ceiling)[0]
            return int(points[hit[0]]) if len(hit) else None

        out["strategies"][name] = {
            "curve": [[p, round(float(m), 4), round(float(s), 4)] for p, m, s in zip(points, mean, std, strict=True)],
            "auc": round(float(mean[fine].mean()), 4),
            "labels_to_90": first_reaching(0.90),
            "labels_to_95": first_reaching(0.95),
            "seconds_per_round": round(float(np.mean([r["seconds"] for r in runs if r["strategy"] == name])), 3),
        }
    if "random" in out["strategies"] and DEFAULT in out["strategies"]:
        r, d = out["strategies"]["random"], out["strategies"][DEFAULT]
        out["default_vs_random"] = {
            "auc_gain_points": round(100 * (d["auc"] - r["auc"]), 2),
            "labels_to_95_ratio": (
                round(d["labels_to_95"] / r["labels_to_95"], 3) if d["labels_to_95"] and r["labels_to_95"] else None
            ),
            "labels_to_90_ratio": (
                round(d["labels_to_90"] / r["labels_to_90"], 3) if d["labels_to_90"] and r["labels_to_90"] else None
            ),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

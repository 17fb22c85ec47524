"""The head fit's threads: fit_head (450 labels, self-trained on the rest of a pool of ROWS 1,280-d embeddings of 10
classes) with the product's rule (training.ml.heads.SMALL_FIT_WORK: one thread for a small fit) against torch's
default threads for every fit, with BUSY processes spinning beside it (the other processes of a worker machine).
Prints ONE JSON object; `speedup` is default seconds / product seconds, per pool size, from the same run.

    nice .venv/bin/python bench/head_threads.py
    nice .venv/bin/python bench/head_threads.py --busy 0 --rows 1800,12000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def _seconds(x: np.ndarray, y: np.ndarray, repeats: int) -> float:
    from training.ml.heads import fit_head

    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fit_head(x[:450], [[int(v)] for v in y[:450]], 10, unlabeled=x[450:])
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="1800,4000,12000,40000", help="pool sizes (labels included)")
    ap.add_argument("--busy", type=int, default=1, help="processes spinning beside the fit")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    from training.ml import heads

    rule = heads.SMALL_FIT_WORK
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    rng = np.random.default_rng(0)
    sizes = {}
    try:
        for rows in (int(r) for r in args.rows.split(",")):
            y = rng.integers(0, 10, rows)
            x = rng.standard_normal((10, 1280)).astype(np.float32)[y] * 0.3
            x += rng.standard_normal((rows, 1280)).astype(np.float32)
            heads.SMALL_FIT_WORK = 0  # torch's default threads for every fit
            default = _seconds(x, y, args.repeats)
            heads.SMALL_FIT_WORK = rule
            product = _seconds(x, y, args.repeats)
            sizes[str(rows)] = {
                "one_thread": rows * 1280 * 10 <= rule,
                "seconds_default_threads": round(default, 3),
                "seconds_product": round(product, 3),
                "speedup": round(default / product, 2),
            }
            print(f"{rows} rows: {sizes[str(rows)]}", file=sys.stderr)
    finally:
        stop.set()
        for p in spinners:
            p.join()
    out = {"torch_threads": torch.get_num_threads(), "busy": args.busy, "small_fit_work": rule, "sizes": sizes}
    print(json.dumps({**out, "machine": machine()}))


if __name__ == "__main__":
    main()

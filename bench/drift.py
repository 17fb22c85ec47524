"""Drift detection on CIFAR-10: false alarms on in-distribution windows, detection of shifted ones.

Embeddings are the feature store's (training.ml.embeddings.EmbeddingStore: bundled EfficientNet-Lite0, mirror-
averaged, cached on disk under --cache, so a repeat embeds nothing). For a head-mode model these are the features
the ONNX export's `embedding` output gives production (training/ml/export_onnx.py); the drift task itself embeds
its reference with the served ONNX graph (serving/services/drift_reference.py), so a fine-tuned backbone is covered.

The test is the drift task's own: serving.services.drift_stats.mmd_permutation_test (MMD, RBF kernel with the
median heuristic, 200 seeded permutations), a window of --window production embeddings against --reference labeled
train images (the task's REFERENCE_MAX is 1000), flagged when p < --threshold (the default setting, 0.01).

- in-distribution: windows of CIFAR-10 test images (never seen in training) against train images;
- blur: the same test images Gaussian-blurred (radius --blur-radius px on the 32 px originals);
- dark: the same test images with brightness times --dark-factor;
- unseen_classes: the project "does not have" --unseen classes: its reference holds train images of the other
  classes only, and production windows are test images of all ten (so about 20 % are of classes it never saw).
  Its false alarms (windows of the known classes only) count into false_alarm_rate too.
- queue_picks (false_alarm_rate_by_reference only): in-distribution windows against a reference of the train images
  an uncertainty queue would have had labeled (20 at random, then batches of 100 lowest-margin picks under a
  logistic head). That was the product's reference before December 2026 (the labeled train images); it is now a
  seeded random sample of the project's images, as in_distribution's is.

Each window is a fresh random draw from a pool of --pool test images (windows overlap across repeats), and each
repeat draws a fresh reference sample from --train-pool train images.

    python bench/drift.py --data ../shared/datasets/cifar10 [--window 500 --repeats 20]

Prints one JSON object: false_alarm_rate, detection_rate {"blur", "dark", "unseen_classes"}, window, and the
p-values' summary. Targets: no alarm in >= 95 % of in-distribution windows, >= 95 % detection per shift.
Skips (a JSON object with "skipped") when the data folder is absent.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import TEST_ID_OFFSET, list_image_folder, machine, subset  # noqa: E402

TARGETS = {"false_alarm_rate_max": 0.05, "detection_rate_min": 0.95}
VARIANT_ID_OFFSET = {"blur": 30_000_000, "dark": 50_000_000}  # cache ids of the shifted copies of test images


def shifted_png(path: str, *, kind: str, blur_radius: float, dark_factor: float) -> io.BytesIO:
    """The image at `path`, blurred or darkened, as PNG bytes (the feature store's opener)."""
    from PIL import Image, ImageEnhance, ImageFilter

    with Image.open(path) as img:
        img = img.convert("RGB")
        if kind == "blur":
            img = img.filter(ImageFilter.GaussianBlur(blur_radius))
        else:
            img = ImageEnhance.Brightness(img).enhance(dark_factor)
    out = io.BytesIO()
    img.save(out, "PNG")
    out.seek(0)
    return out


def queue_picks(features: np.ndarray, labels: np.ndarray, size: int, seed: int, start: int = 20, batch: int = 100):
    """Indices of `size` rows labeled the way an uncertainty queue asks for them: `start` at random, then batches of
    the lowest-margin rows under a logistic head refit on the labels so far. What a reference of labeled images
    looks like when the queue chose them (the drift reference before December 2026)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    picked = list(rng.choice(len(features), size=min(start, size), replace=False))
    while len(picked) < size:
        head = LogisticRegression(max_iter=300).fit(features[picked], labels[picked])
        rest = np.setdiff1d(np.arange(len(features)), picked)
        probs = np.sort(head.predict_proba(features[rest]), axis=1)
        margin = probs[:, -1] - probs[:, -2] if probs.shape[1] > 1 else np.zeros(len(rest))
        picked += list(rest[np.argsort(margin, kind="stable")[: min(batch, size - len(picked))]])
    return np.array(picked)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "cifar10")
    ap.add_argument("--window", type=int, default=500, help="production predictions per window")
    ap.add_argument("--repeats", type=int, default=20, help="windows per kind")
    ap.add_argument("--reference", type=int, default=1000, help="labeled train images per test (REFERENCE_MAX)")
    ap.add_argument("--train-pool", type=int, default=3000, help="train images embedded (references drawn from)")
    ap.add_argument("--pool", type=int, default=3000, help="test images embedded (windows drawn from)")
    ap.add_argument("--unseen", type=int, default=2, help="classes held out of the reference (the last ones)")
    ap.add_argument("--permutations", type=int, default=200)
    ap.add_argument("--threshold", type=float, default=0.01)
    ap.add_argument("--blur-radius", type=float, default=1.0)
    ap.add_argument("--dark-factor", type=float, default=0.5)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-cache")
    args = ap.parse_args()
    if not (args.data / "train").is_dir() or not (args.data / "test").is_dir():
        print(json.dumps({"benchmark": "drift", "skipped": f"no CIFAR-10 ImageFolder at {args.data}"}))
        return
    if args.window < 2 or args.reference < 2 or args.repeats < 1:
        ap.error("--window and --reference must be at least 2, --repeats at least 1")

    from serving.services.drift_stats import mmd_permutation_test
    from training.ml.config import RoundConfig
    from training.ml.embeddings import EmbeddingStore

    t_start = time.monotonic()
    paths, ids, labels, classes = list_image_folder(args.data / "train")
    tpaths, tids, tlabels, _ = list_image_folder(args.data / "test", id_offset=TEST_ID_OFFSET)
    sel = subset(args.train_pool, len(paths), 12345)
    tsel = subset(args.pool, len(tpaths), 54321)
    if args.window > len(tsel) or args.reference > len(sel):
        ap.error(f"--window needs a --pool of at least {args.window}, --reference a --train-pool of {args.reference}")
    cfg = RoundConfig(class_names=classes, image_size=args.image_size)
    store = EmbeddingStore(args.cache)

    def embed(item_ids: list[int], keys: list, opener=None) -> np.ndarray:
        store.compute(item_ids, keys, cfg, None, opener=opener)
        return store.get(item_ids, cfg)

    t = time.monotonic()
    computed_before = store.forward_batches
    train = embed([int(i) for i in ids[sel]], [paths[i] for i in sel])
    test_keys = [tpaths[i] for i in tsel]
    test = {"plain": embed([int(i) for i in tids[tsel]], test_keys)}
    for kind, offset in VARIANT_ID_OFFSET.items():
        opener = functools.partial(shifted_png, kind=kind, blur_radius=args.blur_radius, dark_factor=args.dark_factor)
        test[kind] = embed([offset + int(i) for i in tids[tsel]], test_keys, opener)
    embed_s = time.monotonic() - t
    cached = store.forward_batches == computed_before

    train_labels, test_labels = labels[sel], tlabels[tsel]
    unseen = set(range(len(classes) - args.unseen, len(classes)))
    known_train = np.flatnonzero(~np.isin(train_labels, list(unseen)))
    known_test = np.flatnonzero(~np.isin(test_labels, list(unseen)))
    rng = np.random.default_rng(2026)
    p_values: dict[str, list[float]] = {k: [] for k in ("in_distribution", "in_distribution_known", "blur", "dark",
                                                         "unseen_classes", "in_distribution_queue_picks")}  # fmt: skip

    def test_once(window: np.ndarray, reference: np.ndarray, seed: int) -> float:
        return mmd_permutation_test(
            window, reference, permutations=args.permutations, seed=seed, max_samples=max(len(window), len(reference))
        ).p_value

    t, pick_s = time.monotonic(), 0.0
    for r in range(args.repeats):
        reference = train[rng.choice(len(train), size=args.reference, replace=False)]
        known_ref = train[rng.choice(known_train, size=min(args.reference, len(known_train)), replace=False)]
        window_idx = rng.choice(len(tsel), size=args.window, replace=False)
        known_idx = rng.choice(known_test, size=min(args.window, len(known_test)), replace=False)
        p_values["in_distribution"].append(test_once(test["plain"][window_idx], reference, r))
        p_values["in_distribution_known"].append(test_once(test["plain"][known_idx], known_ref, r))
        p_values["blur"].append(test_once(test["blur"][window_idx], reference, r))
        p_values["dark"].append(test_once(test["dark"][window_idx], reference, r))
        p_values["unseen_classes"].append(test_once(test["plain"][window_idx], known_ref, r))
        t_pick = time.monotonic()
        picked = queue_picks(train, train_labels, args.reference, seed=r)
        pick_s += time.monotonic() - t_pick
        p_values["in_distribution_queue_picks"].append(test_once(test["plain"][window_idx], train[picked], r))
    test_s = time.monotonic() - t - pick_s

    def alarm_rate(key: str) -> float:
        return round(float(np.mean(np.array(p_values[key]) < args.threshold)), 4)

    in_dist = p_values["in_distribution"] + p_values["in_distribution_known"]
    false_alarm_rate = round(float(np.mean(np.array(in_dist) < args.threshold)), 4)
    detection_rate = {k: alarm_rate(k) for k in ("blur", "dark", "unseen_classes")}
    out = {
        "benchmark": "drift",
        "dataset": "cifar10",
        "window": args.window,
        "false_alarm_rate": false_alarm_rate,
        "detection_rate": detection_rate,
        "false_alarm_rate_by_reference": {
            "all_classes": alarm_rate("in_distribution"),
            "known_classes": alarm_rate("in_distribution_known"),
            "queue_picks": alarm_rate("in_distribution_queue_picks"),
        },
        "repeats": args.repeats,
        "windows_in_distribution": len(in_dist),
        "reference": args.reference,
        "train_pool": len(sel),
        "test_pool": len(tsel),
        "unseen_classes": [classes[i] for i in sorted(unseen)],
        "threshold": args.threshold,
        "permutations": args.permutations,
        "test": "MMD, RBF kernel (median heuristic), permutation p-value (serving.services.drift_stats)",
        "shifts": {"blur_radius_px_at_32": args.blur_radius, "dark_factor": args.dark_factor},
        "p_value_median": {k: round(float(np.median(v)), 4) for k, v in p_values.items()},
        "embedding": f"feature store: {cfg.backbone} (bundled), {args.image_size} px, mirror-averaged",
        "targets": TARGETS,
        "targets_met": {
            "false_alarms": 1 - false_alarm_rate >= 1 - TARGETS["false_alarm_rate_max"],
            **{k: v >= TARGETS["detection_rate_min"] for k, v in detection_rate.items()},
        },
        "embeddings_cached": cached,
        "embedding_seconds": round(embed_s, 1),
        "test_seconds": round(test_s, 1),
        "seconds_per_test": round(test_s / sum(len(v) for v in p_values.values()), 3),
        "queue_pick_seconds": round(pick_s, 1),
        "total_seconds": round(time.monotonic() - t_start, 1),
        "machine": machine(),
        "note": "windows drawn at random from the test pool (they overlap across repeats); full size: "
        "--train-pool 3000 --pool 3000 --repeats 20 --window 500 (the defaults).",
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

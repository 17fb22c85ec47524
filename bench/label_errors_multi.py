"""The multi-label label-error search on mosaics: false alarms with every label right, and what it finds with some
class decisions wrong. Prints ONE JSON object.

    nice .venv/bin/python bench/label_errors_multi.py --data ../shared/datasets/cifar10 --items 1000 --seeds 3
    nice .venv/bin/python bench/label_errors_multi.py --data digits --items 1000 --seeds 3
    nice .venv/bin/python bench/label_errors_multi.py --data digits --items 2000 --picks queue --labels 600

Each item is a 2 x 2 mosaic of `--tile` px tiles: one to three images of different classes on random tiles, the other
tiles plain grey; its true label is the set of their classes. The mosaics are written once under
var/bench-cache/mosaics-<data>-<items> and embedded with the product's default backbone (training.ml.embeddings,
cached). Per seed, a `--noise` share of the items gets one class decision wrong: a class of the mosaic left out, or
one that is not in it added (half each). The search is the product's (training.ml.label_search_multi: per class a
5-fold logistic regression, confident learning, the neighbours' backing, the agreement gate), run once on the true
labels (every suspect a false alarm) and once on the noisy ones. `--picks queue|random --labels N` labels only N
items: those the product's default strategy asks for (the uncertain ones, where a cross-validated model disagrees
with right labels most), or N drawn at random. Summed over seeds: `false_suspects` (and per 100
items), `suspects`, `real` (suspect decisions that are wrong ones), `precision`, `recall` (of the wrong decisions in
judged classes), the estimated and true shares of wrong decisions, and seconds per search.
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

from bench.common import folder_namespace, list_image_folder, machine  # noqa: E402

GREY = (128, 128, 128)


def sources(data: str, cache: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(paths, class index per image, class names) of the images mosaics are made of."""
    if data == "digits":
        from bench.al_data import digits

        split = digits(cache, test=0, long_tail=None)
        return split.pool_paths, np.asarray(split.pool_labels), split.classes
    paths, _, labels, classes = list_image_folder(Path(data) / "train")
    return paths, labels, classes


def mosaics(paths, labels, classes, items: int, tile: int, folder: Path) -> np.ndarray:
    """Write `items` mosaics (folder/<i>.png, skipped when there) and return their true labels [items, classes]."""
    from PIL import Image

    rng = np.random.default_rng(2026)
    by_class = [np.nonzero(labels == c)[0] for c in range(len(classes))]
    truth = np.zeros((items, len(classes)), dtype=bool)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(items):
        count = rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])
        chosen = rng.choice(len(classes), count, replace=False)
        cells = rng.choice(4, count, replace=False)
        picks = [int(rng.choice(by_class[c])) for c in chosen]
        truth[i, chosen] = True
        out = folder / f"{i}.png"
        if out.exists():
            continue
        canvas = Image.new("RGB", (2 * tile, 2 * tile), GREY)
        for cell, k in zip(cells, picks, strict=True):
            with Image.open(paths[k]) as im:
                canvas.paste(im.convert("RGB").resize((tile, tile)), ((cell % 2) * tile, (cell // 2) * tile))
        canvas.save(out)
    return truth


def corrupt(truth: np.ndarray, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, wrong-decision mask): in `share` of the items one decision flipped, a class given dropped or
    an absent one added (half each; an item's only choice when the other is impossible)."""
    noisy, wrong = truth.copy(), np.zeros_like(truth)
    for i in np.nonzero(rng.random(len(truth)) < share)[0]:
        given, absent = np.nonzero(truth[i])[0], np.nonzero(~truth[i])[0]
        pool = given if (rng.random() < 0.5 and len(given)) or not len(absent) else absent
        c = int(rng.choice(pool))
        noisy[i, c] = ~noisy[i, c]
        wrong[i, c] = True
    return noisy, wrong


def queue_picks(features: np.ndarray, truth: np.ndarray, count: int, seed: int) -> np.ndarray:
    """The `count` items the product's default strategy asks for, 20 per batch (its cold start first, then a
    multi-label head fitted on the labels so far ranks the rest), as a multi-label project's queue serves them."""
    from training.ml.heads import fit_head, predict_head
    from training.ml.strategies import rank_pool

    n, k = truth.shape
    order = np.argsort(-rank_pool("diverse_margin", None, features, None, 20, seed, multi_label=True), kind="stable")
    labeled = [int(i) for i in order[:20]]
    while len(labeled) < count:
        rest = np.setdiff1d(np.arange(n), labeled)
        fit = fit_head(features[labeled], [np.nonzero(truth[i])[0].tolist() for i in labeled], k, multi_label=True)
        probs = predict_head(fit.head, features[rest], multi_label=True)
        prio = rank_pool("diverse_margin", probs, features[rest], features[labeled], 20, seed + len(labeled),
                         multi_label=True)  # fmt: skip
        labeled += [int(i) for i in rest[np.argsort(-prio, kind="stable")[:20]]]
    return np.asarray(labeled[:count])


def search(features: np.ndarray, given: np.ndarray, seed: int) -> dict:
    from training.ml.label_search import DEFAULT_C, REPEATS
    from training.ml.label_search_multi import (
        cross_val_present_probs,
        decision_error_interval,
        judge_multi_label,
        judged_classes,
    )

    started = time.monotonic()
    classes = judged_classes(given)
    present = cross_val_present_probs(features, given, classes, C=DEFAULT_C, seed=seed, repeats=REPEATS)
    verdict = judge_multi_label(features, given, present, classes)
    low, high = decision_error_interval(given, present, classes, verdict, seed=seed)
    return {
        "verdict": verdict,
        "share": verdict.estimated_errors / verdict.decisions if verdict.decisions else 0.0,
        "interval": (low, high),
        "seconds": time.monotonic() - started,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--tile", type=int, default=32)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.05, help="share of items with one wrong class decision")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-cache")
    ap.add_argument(
        "--picks",
        choices=("all", "random", "queue"),
        default="all",
        help="which items are labeled: all of them, or --labels of them at random or as the queue asks",
    )
    ap.add_argument("--labels", type=int, default=400, help="labeled items with --picks random or queue")
    args = ap.parse_args()
    if args.data != "digits" and not (Path(args.data) / "train").is_dir():
        print(json.dumps({"bench": "label_errors_multi", "skipped": f"no {args.data}/train"}))
        return

    from training.ml.config import RoundConfig
    from training.ml.embeddings import EmbeddingStore

    paths, labels, classes = sources(args.data, args.cache)
    name = "digits" if args.data == "digits" else Path(args.data).name
    folder = args.cache / f"mosaics-{name}-{args.items}-{args.tile}"
    truth = mosaics(paths, labels, classes, args.items, args.tile, folder)
    ids = [folder_namespace(folder) + i for i in range(args.items)]
    cfg = RoundConfig(image_size=args.image_size, class_names=classes)
    store = EmbeddingStore(args.cache)
    store.compute(ids, [str(folder / f"{i}.png") for i in range(args.items)], cfg)
    features = store.get(ids, cfg)
    everything = (features, truth)

    totals = dict.fromkeys(("false_suspects", "suspects", "real", "wrong", "wrong_judged"), 0)
    shares, seconds, weak = [], [], []
    for seed in range(args.seeds):
        features, truth = everything
        if args.picks != "all":
            rng = np.random.default_rng(100 + seed)
            take = (
                queue_picks(features, truth, args.labels, seed)
                if args.picks == "queue"
                else rng.choice(len(truth), args.labels, replace=False)
            )
            features, truth = features[take], truth[take]
        clean = search(features, truth, seed)
        totals["false_suspects"] += len(clean["verdict"].suspects)
        noisy, wrong = corrupt(truth, args.noise, np.random.default_rng(seed))
        found = search(features, noisy, seed)
        verdict = found["verdict"]
        strong = verdict.strong
        totals["suspects"] += len(verdict.suspects)
        totals["real"] += sum(bool(wrong[s.row, s.cls]) for s in verdict.suspects)
        totals["wrong"] += int(wrong.sum())
        totals["wrong_judged"] += int(wrong[:, strong].sum())
        true_share = float(wrong[:, strong].mean()) if strong else 0.0
        shares.append([round(found["share"], 4), [round(v, 4) for v in found["interval"]], round(true_share, 4)])
        seconds += [clean["seconds"], found["seconds"]]
        weak.append([classes[v.cls] for v in verdict.verdicts if v.weak])
    print(
        json.dumps(
            {
                "bench": "label_errors_multi",
                "data": name,
                "items": args.items,
                "picks": args.picks,
                "labeled": args.items if args.picks == "all" else args.labels,
                "classes": len(classes),
                "labels_per_item": round(float(everything[1].sum(axis=1).mean()), 3),
                "seeds": args.seeds,
                "noise": args.noise,
                **totals,
                "false_suspects_per_100_items": round(100 * totals["false_suspects"] / (len(truth) * args.seeds), 2),
                "precision": round(totals["real"] / totals["suspects"], 4) if totals["suspects"] else None,
                "recall": round(totals["real"] / totals["wrong_judged"], 4) if totals["wrong_judged"] else None,
                "estimated_vs_true_share": shares,
                "weak_classes": weak,
                "search_seconds": round(float(np.mean(seconds)), 2),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()

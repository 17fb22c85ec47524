"""The bundled backbones side by side: for each (backbone, image size) the embedding cost on this CPU, the accuracy
with every pool item labeled (ceiling) and the active-learning curve of the default against random, each from one
run of bench/active_learning.py on the same pool and test set. Prints ONE JSON object.

    nice .venv/bin/python bench/backbones.py --data ../shared/datasets/cifar10 --pool 2000 --test 1000 --seeds 3

The figures shown beside the backbone choice in the project settings (labeling/constants.py BACKBONE_FIGURES) come
from this command."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("tf_efficientnet_lite0:128", "tf_efficientnet_lite0:192", "tf_efficientnet_lite2:128",
           "tf_efficientnet_lite2:192", "tf_efficientnet_lite2:260")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-labels", type=int, default=1000)
    ap.add_argument("--configs", default=",".join(CONFIGS), help="backbone:size,...")
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-cache")
    args = ap.parse_args()

    rows = []
    for config in args.configs.split(","):
        backbone, size = config.split(":")
        cmd = [sys.executable, str(ROOT / "bench" / "active_learning.py"), "--data", args.data,
               "--pool", str(args.pool), "--test", str(args.test), "--seeds", str(args.seeds),
               "--max-labels", str(args.max_labels), "--strategies", "random,diverse_margin",
               "--backbone", backbone, "--image-size", size, "--cache", str(args.cache)]  # fmt: skip
        print(f"{backbone} at {size} px ...", file=sys.stderr, flush=True)
        run = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        default, rand = run["strategies"]["diverse_margin"], run["strategies"]["random"]
        rows.append({
            "backbone": backbone,
            "image_size": int(size),
            "embedding_ms_per_image": run["embedding_ms_per_image"],
            "embeddings_computed": run["embeddings_computed"],
            "ceiling_accuracy": run["ceiling_accuracy"],
            "auc_default": default["auc"],
            "auc_random": rand["auc"],
            "acc_at": default["acc_at"],
            "labels_to_90_default": default["labels_to_90"],
            "labels_to_90_random": rand["labels_to_90"],
            "seconds_per_round": default["seconds_per_round"],
        })  # fmt: skip
    print(json.dumps({
        "benchmark": "backbones", "dataset": run["dataset"], "pool": run["pool"], "test": run["test"],
        "seeds": args.seeds, "flip_average": run["flip_average"], "configs": rows, "machine": run["machine"],
        "note": "embedding cost measured on a shared 2-core machine (ms per image with its mirror; x1000 = s per"
        " 1,000 images); ceiling = every pool item labeled",
    }))  # fmt: skip


if __name__ == "__main__":
    main()

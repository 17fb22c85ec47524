"""Label-error detection on CIFAR-10: Lite0 embeddings, 5 % injected label flips, cross-validated probabilities.

    .venv/bin/python bench/label_errors.py --data ../shared/datasets/cifar10 --noise 0.05

Takes a fixed subset of the training images (default 5,000), embeds them with EfficientNet-Lite0 at 128 px
through training.ml.embeddings (cached under var/bench-cache, shared with the other ML benchmarks), flips a
`--noise` share of the labels to a different random class, computes out-of-sample probabilities with 5-fold
cross-validation of a logistic-regression head (the product path, training.ml.confident), and compares the top
10 % of our ranking with the top 10 % of cleanlab's find_label_issues(..., ranked by self_confidence) on the same
probabilities. Prints ONE JSON object.

    .venv/bin/python bench/label_errors.py --path product --data digits --noise 0.05

`--path product` measures what a user sees instead: a throwaway database, the images imported and labeled through
the services (`--noise` of the labels wrong), a model trained by the training service, the search started by the
page's button (Celery eager, so the task runs in this process), and the rows read back from the label-error page.
`--data digits` uses the scikit-learn digits as `make demo` writes them (64 px PNGs); `--n` caps the count.
Same JSON keys (cleanlab's as null), plus "path", "page_rows", "rows_model_agrees", "estimated_share",
"share_interval", "search_status", "train_seconds", "search_seconds".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
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
    parser.add_argument("--path", choices=("library", "product"), default="library")
    args = parser.parse_args()
    if args.path == "product":
        print(json.dumps(product_path(args)))
        return

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
        bar.update(done - bar.n)  # redrawn at most every 0.1 s (tqdm's mininterval), not per image

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


def _images(data: Path, n: int, seed: int) -> tuple[list[tuple[str, bytes]], list[int], list[str]]:
    """(name, bytes) of each image, its true class index, the class names: the digits or an ImageFolder subset."""
    if str(data) == "digits":
        from labeling.management.commands.demo_setup import write_digits

        folder = Path(os.environ["LABELLOOP_DATA_ROOT"]) / "digits"
        rows = write_digits(folder, None)  # the demo's own 64 px PNGs
        pick = subset(n, len(rows), seed)
        files = [(rows[i][0], (folder / rows[i][0]).read_bytes()) for i in pick]
        return files, [rows[i][1] for i in pick], [str(d) for d in range(10)]
    paths, _ids, labels, classes = list_image_folder(data / "train")
    pick = subset(n, len(paths), seed)
    return [(Path(paths[i]).name, Path(paths[i]).read_bytes()) for i in pick], [int(labels[i]) for i in pick], classes


def product_path(args) -> dict:
    """Import, label, train and search through the product in a throwaway database; read the page's rows."""
    work = Path(tempfile.mkdtemp(prefix="labelloop-bench-label-errors-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
            "LABELLOOP_MEDIA_ROOT": str(work / "media"),
            "LABELLOOP_DATA_ROOT": str(work / "data"),
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "LOG_LEVEL": "WARNING",
        }
    )
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return _product_run(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _product_run(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from labeling.models import Membership, Role
    from labeling.services.annotations import annotation_create
    from labeling.services.imports import item_create_from_bytes
    from labeling.services.projects import label_class_create, project_create
    from training.models import LabelErrorSearch
    from training.services.runs import training_run_enqueue, training_run_execute

    setup_test_environment()  # the test client on ALLOWED_HOSTS = testserver
    files, truth, class_names = _images(args.data, args.n, args.seed)
    users = {name: get_user_model().objects.create_user(name, password="pw") for name in ("boss", "ann")}
    project = project_create(name="Label errors bench", slug="bench", created_by=users["boss"])
    project.image_size = args.image_size
    project.save(update_fields=["image_size"])
    Membership.objects.update_or_create(user=users["ann"], project=project, defaults={"role": Role.ANNOTATOR})
    classes = [label_class_create(project=project, name=name) for name in class_names]
    rng = np.random.default_rng(args.seed + 1)
    wrong, items = set(), 0
    for (name, data), digit in zip(files, truth, strict=True):
        item = item_create_from_bytes(project=project, name=name, data=data)
        label = digit
        if rng.random() < args.noise:
            label = (digit + int(rng.integers(1, len(classes)))) % len(classes)
            wrong.add(item.pk)
        annotation_create(item=item, user=users["ann"], class_ids=[classes[label].pk])
        items += 1

    started = time.monotonic()
    run = training_run_enqueue(project=project, trigger="manual", send=False)
    trained = training_run_execute(run_id=run.pk)
    train_seconds = time.monotonic() - started
    client = Client()
    client.force_login(users["boss"])
    started = time.monotonic()
    client.post(reverse("training:label_errors_find", args=[project.slug]))
    search_seconds = time.monotonic() - started
    html = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()
    rows = re.findall(r'<tr data-item="(\d+)" data-given="(\d*)" data-model="(\d*)"', html)
    listed = [int(item) for item, _, _ in rows]
    real = len(set(listed) & wrong)
    search = LabelErrorSearch.objects.filter(project=project).order_by("-pk").first()
    budget = max(1, round(0.10 * items))
    top = set(listed[:budget])
    return {
        "bench": "label_errors",
        "path": "product",
        "images": items,
        "noise": args.noise,
        "flipped": len(wrong),
        "image_size": args.image_size,
        "folds": 5,
        "C": args.C,
        "recall_at_10pct": round(len(top & wrong) / len(wrong), 4) if wrong else None,
        "precision_at_10pct": round(len(top & wrong) / budget, 4),
        "cleanlab_recall_at_10pct": None,
        "cleanlab_precision_at_10pct": None,
        "cleanlab_flagged": None,
        "flagged": len(listed),
        "flagged_share": round(len(listed) / items, 4),
        "flagged_precision": round(real / len(listed), 4) if listed else None,
        "flagged_recall": round(real / len(wrong), 4) if wrong else None,
        "page_rows": len(listed),
        "rows_model_agrees": sum(1 for _, given, model in rows if given == model),
        "search_status": search.status if search else None,
        "estimated_share": round(search.estimated_share, 4) if search and search.estimated_share is not None else None,
        "share_interval": [round(search.share_low, 4), round(search.share_high, 4)]
        if search and search.share_low is not None
        else None,
        "cv_accuracy_vs_noisy_labels": round(search.agreement, 4) if search and search.agreement is not None else None,
        "holdout_accuracy": (trained.get("metrics") or {}).get("accuracy"),
        "train_seconds": round(train_seconds, 2),
        "search_seconds": round(search_seconds, 2),
        "machine": machine(),
    }


if __name__ == "__main__":
    main()

"""Compressed model exports: FP16 and INT8 ONNX and TorchScript beside FP32 ONNX, each measured on the project's own
images.

Rules:
- INT8 is calibrated on labeled train items (up to CALIBRATION_LIMIT), else on unlabeled train items, never on the
  holdout it is measured on.
- Each format is measured by the worker that built it on the labeled holdout (up to EVALUATION_LIMIT items):
  accuracy and macro-F1 against the labels, top-1 agreement and the largest probability difference against FP32,
  file size, ms per image (batch 1) and images/s (batch 32) on this machine's CPU. With no labeled holdout the
  same figures come from labeled train items, and the report says so (they are not an unbiased accuracy); with no
  labeled item at all, from unlabeled items (agreement and speed only).
- Agreement needs no label: while the labeled items are fewer than EVALUATION_LIMIT, unlabeled items (holdout
  first, never an INT8 calibration image) fill the measured set up to it, and agreement, probability difference
  and speed are measured on all of them. A new project's first export was otherwise judged within tolerance on its
  5 labeled holdout images.
- TOLERANCES are what an export promises against the platform's probabilities; the page, the model card and the
  manifest state them, and a format outside its tolerance on the measured images is flagged, not hidden.

The ONNX work itself is training/ml/export_onnx.py, the TorchScript trace training/ml/export_torchscript.py (no
Django); torch is imported inside functions only.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, When

from labeling.models import Item, ResolvedLabel, Split
from stats.proportions import wilson_interval
from training.ml.export_files import DECIDED_MARGIN, MULTI_LABEL_THRESHOLD, ONNX_FILES, cpu_has_vnni
from training.ml.export_torchscript import TORCHSCRIPT_FILE
from training.models import ModelVersion
from training.services.snapshot import item_local_path

EXPORT_STEPS = 8  # load, ONNX, check, FP16, INT8, measure, card + zip, done
CALIBRATION_LIMIT = 64
EVALUATION_LIMIT = 256
# The ONNX files (the exports view pairs these labels with ONNX_FILES); LABELS and FILES name every format.
FORMAT_LABELS = {"fp32": "FP32 ONNX", "fp16": "FP16 ONNX", "int8": "INT8 ONNX", "int8_vnni": "INT8 ONNX, VNNI"}
LABELS = {**FORMAT_LABELS, "torchscript": "TorchScript"}
FILES = {**ONNX_FILES, "torchscript": TORCHSCRIPT_FILE}
# Against the platform's probabilities (FP32 ONNX and TorchScript are checked against PyTorch at export time too).
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_prob_diff": 1e-4},
    "torchscript": {"max_prob_diff": 1e-4},  # the same weights and operations, traced: FP32's promise
    "fp16": {"max_prob_diff": 2e-2},
    # INT8 moves a few probabilities a lot (0.3-0.4 at worst on CIFAR-10, bench/compression.py) while keeping
    # accuracy: its promise is top-1 agreement where FP32 is not at a near-tie, with a loose cap on the difference.
    "int8": {"top1_agreement_decided": 0.9, "max_prob_diff": 0.5},
    "int8_vnni": {"top1_agreement_decided": 0.9, "max_prob_diff": 0.5},  # on a CPU it suits (INT8_FILES_NOTE)
}
INT8_FILES_NOTE = (
    f"Two INT8 files: `{ONNX_FILES['int8']}` has 7-bit weights and runs right on any x86 CPU; "
    f"`{ONNX_FILES['int8_vnni']}` has 8-bit weights, more accurate on x86 CPUs with VNNI (Intel since Cascade Lake, "
    "AMD since Zen 4) and on ARM, but on x86 CPUs without VNNI its products saturate and it loses accuracy "
    "(3.6 points on CIFAR-10, where the 7-bit file lost 0.8)."
)
POPULATION_NOTES = {
    "holdout": "the labeled holdout (never trained on, never chosen by active learning)",
    "train": "labeled TRAIN items: this project has no labeled holdout, so accuracy here is not unbiased",
    "unlabeled": "unlabeled items: no labeled item exists, so only agreement with FP32 and speed are measured",
    "synthetic": "random inputs: the project has no images, so only agreement with FP32 and speed are measured",
}


def accuracy_interval(row: dict[str, Any], report: dict[str, Any]) -> dict[str, Any] | None:
    """A format's measured accuracy with its n (the labeled images it rests on) and the Wilson 95 % interval:
    {"n", "low", "high", "method"}; None without an accuracy. Read from the row when the export stored it, else
    worked out from the accuracy and `labeled_images` (exports made before intervals were stored). At 24 images one
    image is 4 points: 0.792 and 0.833 are the same figure within their intervals."""
    accuracy, n = row.get("accuracy"), row.get("accuracy_n") or report.get("labeled_images")
    if not isinstance(accuracy, int | float) or not isinstance(n, int) or n <= 0:
        return None
    if isinstance(row.get("accuracy_low"), int | float) and isinstance(row.get("accuracy_high"), int | float):
        return {"n": n, "low": row["accuracy_low"], "high": row["accuracy_high"], "method": "wilson"}
    low, high = wilson_interval(round(accuracy * n), n)
    return {"n": n, "low": low, "high": high, "method": "wilson"}


def accuracy_text(row: dict[str, Any], report: dict[str, Any]) -> str:
    """'0.792 [0.595, 0.908], n = 24' (3 decimals, 95 % interval): the exports page, the card and the command."""
    if row.get("accuracy") is None:
        return "—"
    interval = accuracy_interval(row, report)
    if interval is None:
        return f"{row['accuracy']:.3f}"
    return f"{row['accuracy']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}], n = {interval['n']}"


def macro_f1_text(row: dict[str, Any]) -> str:
    """A format's measured macro-F1, 3 decimals ("—" without labels), as the card and the command write it (and the
    exports page). No interval: the export measures none, and the accuracy's Wilson interval is not macro-F1's."""
    value = row.get("macro_f1")
    return format(value, ".3f") if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def tolerance_text(fmt: str, multi_label: bool = False) -> str:
    rule = TOLERANCES[fmt]
    parts = []
    if "top1_agreement_decided" in rule and multi_label:
        parts.append(
            f"the same predicted classes (probability ≥ {MULTI_LABEL_THRESHOLD:g}) on ≥ "
            f"{rule['top1_agreement_decided']:.0%} of the images where every FP32 probability is ≥ {DECIDED_MARGIN:g} "
            f"from {MULTI_LABEL_THRESHOLD:g}"
        )
    elif "top1_agreement_decided" in rule:
        parts.append(
            f"top-1 agreement ≥ {rule['top1_agreement_decided']:.0%} on images whose top two FP32 probabilities are "
            f"≥ {DECIDED_MARGIN:g} apart"
        )
    parts.append(f"max probability difference ≤ {rule['max_prob_diff']:g}")
    return ", ".join(parts)


def within_tolerance(fmt: str, row: dict[str, Any]) -> bool:
    rule = TOLERANCES[fmt]
    agreement_ok = row["top1_agreement_decided"] >= rule.get("top1_agreement_decided", 0.0)
    return agreement_ok and row["max_prob_diff"] <= rule["max_prob_diff"] + 1e-12


def format_promises(multi_label: bool = False) -> list[dict[str, str]]:
    """Every format's label, file and stated tolerance, in the order the export measures them."""
    return [
        {"format": fmt, "label": LABELS[fmt], "file": FILES[fmt], "tolerance": tolerance_text(fmt, multi_label)}
        for fmt in FILES
    ]


def labeled_images(*, version: ModelVersion, split: str, limit: int) -> tuple[list[str], list[list[int]]]:
    """(local paths, label indices in the version's output order) of labeled items of one split, by item id.
    Labels on classes the version does not predict are dropped; a single-label item keeps its first class."""
    index = {class_id: i for i, class_id in enumerate(version.class_ids)}
    multi = version.project.is_multi_label
    rows = (
        ResolvedLabel.objects.filter(project=version.project, item__split=split)
        .select_related("item")
        .prefetch_related("classes")
        .order_by("item_id")
    )
    paths, labels = [], []
    for row in rows.iterator(chunk_size=500):
        idx = sorted(index[c.pk] for c in row.classes.all() if c.pk in index)
        if not idx:
            continue
        paths.append(item_local_path(row.item))
        labels.append(idx if multi else idx[:1])
        if len(paths) >= limit:
            break
    return paths, labels


def calibration_images(*, version: ModelVersion) -> list[str]:
    """Local paths of the images INT8 is calibrated on: labeled train items, else unlabeled train items (calibration
    reads activations, not labels; without any image the INT8 files fall back to dynamic quantization, which is poor
    for convolutions). Never the holdout the formats are measured on."""
    paths, _ = labeled_images(version=version, split=Split.TRAIN, limit=CALIBRATION_LIMIT)
    if paths:
        return paths
    items = Item.objects.filter(project=version.project, split=Split.TRAIN).order_by("id")[:CALIBRATION_LIMIT]
    return [item_local_path(item) for item in items if item.file]


def unlabeled_images(*, version: ModelVersion, limit: int, exclude: set[str]) -> list[str]:
    """Local paths of up to `limit` items without a resolved label, holdout first, then by id; none in `exclude`."""
    if limit <= 0:
        return []
    items = (
        Item.objects.filter(project=version.project, resolved__isnull=True)
        .exclude(file="")
        .order_by(Case(When(split=Split.HOLDOUT, then=0), default=1), "id")
    )
    paths = []
    for item in items.iterator(chunk_size=500):
        path = item_local_path(item)
        if path not in exclude:
            paths.append(path)
            if len(paths) >= limit:
                break
    return paths


def evaluation_set(*, version: ModelVersion, exclude: set[str]) -> tuple[str, list[str], list[list[int]] | None]:
    """(population, paths, labels or None) the formats are measured on: the labels are those of the first
    len(labels) paths, the rest unlabeled items not in `exclude` (the calibration images); see the module rules."""
    for split in (Split.HOLDOUT, Split.TRAIN):
        paths, labels = labeled_images(version=version, split=split, limit=EVALUATION_LIMIT)
        if paths:
            fill = unlabeled_images(version=version, limit=EVALUATION_LIMIT - len(paths), exclude=exclude)
            return str(split), paths + fill, labels
    items = Item.objects.filter(project=version.project).order_by("id")[:EVALUATION_LIMIT]
    paths = [item_local_path(item) for item in items if item.file]
    return ("unlabeled" if paths else "synthetic"), paths, None


def measured_note(report: dict) -> str:
    """What a format table was measured on, after "measured on" (the exports page, the card, the command)."""
    images, labeled = report["images"], report.get("labeled_images")
    if not labeled or labeled == images:
        return f"{images} images: {report['population_note']}"
    return (
        f"{images} images. Accuracy and macro-F1 on {labeled} of them, {report['population_note']}; agreement "
        f"with FP32, the largest probability difference and speed on all {images}, {images - labeled} of them "
        "unlabeled (none an INT8 calibration image)"
    )


def preprocess(paths: list[str], pre: dict[str, Any]):
    """The platform's eval transform (training.ml.data) applied to image files: float32 N x 3 x S x S."""
    import numpy as np
    import torch

    from training.ml.data import build_transform, load_image

    size = pre["image_size"]
    if not paths:
        return torch.rand(8, 3, size, size, generator=torch.Generator().manual_seed(0)).numpy() * 2 - 1
    transform = build_transform(
        {"interpolation": pre["interpolation"], "mean": tuple(pre["mean"]), "std": tuple(pre["std"])},
        size,
        is_training=False,
        crop_pct=pre["crop_pct"],
        squash_aspect=pre["squash_aspect"],
    )
    return np.stack([transform(load_image(path)).numpy() for path in paths]).astype(np.float32)


def formats_build(*, version: ModelVersion, folder, pre: dict[str, Any], multi_label: bool, progress) -> dict:
    """Write model.fp16.onnx and the two INT8 files beside folder/model.onnx and measure them and the TorchScript file
    already there (worker only); `cpu_vnni` records whether the measuring CPU has VNNI (None: could not tell).
    `progress(step, message)` reports the steps 4-6 of EXPORT_STEPS."""
    from training.ml.export_onnx import compare_formats, write_compressed

    progress(4, "Converting to FP16 and calibrating INT8")
    calibration_paths = calibration_images(version=version)
    calibration = preprocess(calibration_paths, pre) if calibration_paths else None
    method = write_compressed(folder, calibration)
    progress(5, "Loading the measuring images")
    population, paths, labels = evaluation_set(version=version, exclude=set(calibration_paths))
    images = preprocess(paths, pre)
    progress(6, f"Measuring each format on {len(images)} images")
    rows = compare_formats(folder, images, labels, multi_label=multi_label, files=FILES)
    for row in rows:
        row["label"] = LABELS[row["format"]]
        row["tolerance"] = tolerance_text(row["format"], multi_label)
        row["within_tolerance"] = within_tolerance(row["format"], row)
    report = {
        "population": population,
        "population_note": POPULATION_NOTES[population],
        "images": len(images),
        "labeled": labels is not None,
        "labeled_images": len(labels) if labels is not None else 0,
        # What "agreement" compares: the top class, or a multi-label model's predicted label set (the row keys stay
        # top1_agreement*, as in exports made before multi-label files were held to their label sets).
        "agreement": "label set" if multi_label else "top-1",
        "int8_method": method,
        "cpu_vnni": cpu_has_vnni(),
        "calibration_images": len(calibration_paths),
        "formats": rows,
    }
    for row in rows:  # each accuracy with its n and 95 % interval (Wilson), as the headline figures have them
        interval = accuracy_interval(row, report)
        if interval is not None:
            row.update(accuracy_n=interval["n"], accuracy_low=interval["low"], accuracy_high=interval["high"])
    return report


def agreement_name(report: dict) -> str:
    """The agreement column's name: top-1, or label-set agreement for a multi-label model's files."""
    if report.get("agreement") == "label set":
        return f"label-set agreement (classes ≥ {MULTI_LABEL_THRESHOLD:g})"
    return "top-1 agreement"


def size_text(size_bytes: int | None) -> str:
    """How a model export's sizes are written, on the exports page, in the model card and by manage.py export_model:
    decimal units with two decimals ("13.56 MB" is 13,557,343 bytes: 10^6 bytes a MB, not 2^20); "" for none."""
    if size_bytes is None:
        return ""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.2f} {unit}"
    return f"{size_bytes} bytes"


def _cell(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _vnni_text(vnni: bool | None) -> str:
    """What the measuring CPU says of the two INT8 files' figures above."""
    if vnni is None:
        return "Whether the exporting worker's CPU has VNNI is unknown."
    if vnni:
        return "The exporting worker's CPU has VNNI: both INT8 rows above are as such a CPU runs them."
    return "The exporting worker's CPU has no VNNI: the 8-bit row above is as such a CPU runs it."


def formats_card(report: dict) -> list[str]:
    """The model card's section on the ONNX and TorchScript files (markdown lines)."""
    lines = [
        "## Export formats",
        "",
        f"Measured when exported, on {measured_note(report)}. Accuracy and macro-F1 are against the labels; "
        "agreement and the largest probability difference are against FP32 ONNX; latency is one image per call, "
        "throughput batches of 32, on the exporting worker's CPU. Accuracy has its 95 % interval (Wilson) and n, the "
        "labeled images it rests on: formats whose intervals overlap are not shown to differ in accuracy.",
        "",
        f"| file | accuracy [95 % interval], n | macro-F1 | {agreement_name(report)} | max prob diff | size | "
        "ms/image | images/s | speedup | tolerance | within |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["formats"]:
        lines.append(
            f"| `{row['file']}` ({row['label']}) | {accuracy_text(row, report)} | "
            f"{macro_f1_text(row)} | {row['top1_agreement']:.3f} | {row['max_prob_diff']:.2e} | "
            f"{size_text(row['size_bytes'])} | {row['ms_per_image']:.2f} | {row['img_per_s']:.1f} | "
            f"{row['speedup_vs_fp32']:.2f}x | {row['tolerance']} | {'yes' if row['within_tolerance'] else 'NO'} |"
        )
    lines += [
        "",
        f"INT8: {report['int8_method']}. {INT8_FILES_NOTE} {_vnni_text(report.get('cpu_vnni'))} "
        "FP16 keeps float32 inputs and outputs. Every ONNX file has input `input` and "
        "outputs `logits` and `embedding` (the pooled backbone features the classifier reads, N x D, averaged over "
        "the image and its mirror like the logits when the model does that), for drift monitoring; "
        f"`{TORCHSCRIPT_FILE}` returns the same two, as a tuple in that order.",
        "",
    ]
    return lines

"""The model card (MODEL_CARD.md in a model export): what a version is, how it was measured, how to use it."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from labeling.services.exports import code_version
from training.ml.export_files import ONNX_OPSET, ONNX_TOLERANCE
from training.models import ModelVersion
from training.services.export_formats import formats_card


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _weights_row(metrics: dict) -> list[str]:
    """The registered backbone weights a version was trained from (name, file, sha256), when it was."""
    w = metrics.get("backbone_weights")
    if not isinstance(w, dict):
        return []
    return [f"| backbone weights | {w.get('name') or w.get('file')} (`{w.get('file')}`), sha256 `{w.get('sha256')}` |"]


def _figure_row(label, value, low, high, n, method, missing: str = "none") -> str:
    """One row of a figures table: | label | value | 95 % interval | n | interval method |."""
    shown = "n/a" if value is None else f"{value:.4f}"
    interval = f"[{low:.4f}, {high:.4f}]" if low is not None and high is not None else missing
    return f"| {label} | {shown} | {interval} | {'?' if n is None else n} | {method or '-'} |"


def _headline_rows(metrics: dict) -> list[str]:
    """Each headline metric with its 95 % interval and n; macro averages name the classes without support."""
    from training.ml.intervals import headline  # numpy only

    lines: list[str] = []
    rows = headline(metrics)
    if rows:
        recorded = isinstance(metrics.get("intervals"), dict)
        lines += ["", "| headline metric | value | 95 % interval | n | interval method |", "|---|---|---|---|---|"]
        missing = "none" if recorded else "none (evaluated before intervals were recorded)"
        lines += [_figure_row(r["label"], r["value"], r["low"], r["high"], r["n"], r["method"], missing) for r in rows]
    if metrics.get("no_support"):
        lines += ["", "Macro averages are over the classes present in the holdout; no holdout item of: "
                  + ", ".join(str(x) for x in metrics["no_support"]) + "."]  # fmt: skip
    return lines


def _cross_validated_rows(version: ModelVersion, metrics: dict) -> list[str]:
    """While the holdout is small, the cross-validated estimate of the latest label-error search (as the model page
    shows it beside the holdout's figures), each figure with its interval and n."""
    from training.selectors.quality import cross_validated_estimate, holdout_is_small

    n = metrics.get("n", metrics.get("holdout_size"))
    n = n if isinstance(n, int) else None
    if not holdout_is_small(n):
        return []
    cv = cross_validated_estimate(project=version.project, version=version)
    if cv is None:
        return []
    rows = [(f"{f.label} (out of fold{', labeled items' if k == 0 else ''})", f) for k, f in enumerate(cv.headline)]
    if cv.open_accuracy is not None:
        rows.append((f"accuracy on the open images (estimated; {cv.open_scored} scored)", cv.open_accuracy))
    when = f" of {cv.searched_at:%Y-%m-%d %H:%M UTC}" if cv.searched_at else ""
    lines = [
        "",
        "## Cross-validated estimate",
        "",
        f"The holdout is small ({'?' if n is None else n} items), so its intervals are wide. From the label-error "
        f"search{when}: every one of {cv.n} labeled items predicted by a head trained without it "
        f"({cv.folds or '?'}-fold), the kind of model this version is, not the version itself. Labels the "
        "active-learning queue asked for are the hard images, so the out-of-fold figures read low in a project "
        "labeled through the queue"
        + (
            "; the estimate on the open images matches the heads' confidence to how often they are right at it, "
            "which allows for that."
            if cv.open_accuracy is not None
            else "."
        ),
        "",
        "| estimate | value | 95 % interval | n | interval method |",
        "|---|---|---|---|---|",
    ]
    lines += [_figure_row(label, f.value, f.low, f.high, f.n, f.method) for label, f in rows]
    return lines


# Numbers the training run records beside the holdout metrics (training/ml/pipeline.py, train.py, ddp.py): how many
# items it saw and how it was set, listed apart so that the metrics table holds only holdout figures.
RUN_FACTS = frozenset(
    {"train_size", "val_size", "holdout_size", "pool_size", "pseudo_labeled", "head_l2", "epochs_run"}
)


def _value_rows(values: dict) -> list[str]:
    return [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in sorted(values.items())]


def _exported_at(config: dict) -> datetime:
    """When the export was made, as its config.json and manifest say (the card was dated a few minutes later, when
    it was written); now for a config without the time."""
    try:
        return datetime.fromisoformat(config["labelloop"]["exported_at"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return timezone.now()


def model_card(
    *,
    version: ModelVersion,
    config: dict,
    onnx_diff: float,
    class_names: list[str],
    formats: dict | None = None,
    torchscript: dict | None = None,
) -> str:
    # The export's copy: its class names are spelled as class_names are (training.selectors.classes.metrics_spelled).
    metrics = (config.get("labelloop") or {}).get("metrics", version.metrics) or {}
    pre = config["preprocessing"]
    forward = "(model(batch) + model(batch.flip(-1))) / 2" if pre.get("flip_average") else "model(batch)"
    lines = [
        f"# {version.project.name} — model v{version.number}",
        "",
        f"Image classifier exported by Labelloop ({code_version()}) on {_exported_at(config):%Y-%m-%d %H:%M UTC}.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{config['architecture']}` (timm) |",
        *_weights_row(metrics),
        f"| task | {'multi-label (sigmoid)' if config.get('multi_label') else 'single-label (softmax)'} |",
        f"| classes | {len(class_names)} |",
        f"| trained on | {version.label_count} labels |",
        f"| dataset hash | `{version.dataset_hash or 'unknown'}` |",
        f"| created | {version.created_at:%Y-%m-%d %H:%M UTC} |",
        "",
        "## Holdout metrics",
        "",
        "Measured on the project's holdout split, which active learning never chooses (unbiased).",
        "",
    ]
    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    scalars = {k: v for k, v in numbers.items() if k not in RUN_FACTS}
    if scalars:
        lines += ["| metric | value |", "|---|---|", *_value_rows(scalars)]
    else:
        lines.append("No holdout metrics were recorded for this version.")
    lines += _headline_rows(metrics)
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict) and per_class:
        # under the holdout's heading, captioned: after the cross-validated section it read as part of that estimate
        keys = sorted(next(iter(per_class.values())).keys())
        lines += ["", "Per class, on the holdout:", "", "| class | " + " | ".join(keys) + " |"]
        lines.append("|---|" + "---|" * len(keys))
        for name, row in per_class.items():
            cells = [_cell(row.get(k)) for k in keys]  # None: a class without holdout support
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    facts = {k: v for k, v in numbers.items() if k in RUN_FACTS}
    if facts:
        lines += ["", "Training run (counts and settings, not holdout metrics):", "", "| | |", "|---|---|"]
        lines += _value_rows(facts)
    lines += _cross_validated_rows(version, metrics)
    lines += [
        "",
        "## Classes (output order)",
        "",
        "Output j (`logits[:, j]`, the prediction service's `probabilities[j]`) is `class_names[j]` of config.json, "
        "listed here as j. Each is the class's path as dataset exports spell it (`parent/child`). This order is the "
        "model's own, not a dataset export's `class_map` (ImageFolder's sorted folder order): match classes by path, "
        "never by index.",
        "",
        *[f"{i}. {name}" for i, name in enumerate(class_names)],
        "",
        "## Preprocessing",
        "",
        f"RGB (EXIF orientation applied); resize the shorter side to floor({pre['image_size']} / {pre['crop_pct']}) "
        f"with {pre['interpolation']} interpolation; center-crop {pre['image_size']}x{pre['image_size']}; "
        f"scale to [0, 1]; normalize with mean {pre['mean']} and std {pre['std']}. "
        "This is timm's eval transform: `timm.data.create_transform(input_size=(3, S, S), interpolation=..., "
        "mean=..., std=..., crop_pct=..., is_training=False)`.",
        "",
        "Pictures reach the transform as Labelloop decodes them (`imaging/pixels.py`): a transparent image is laid "
        "on white, or on black when what it shows is light (alpha-weighted mean luma above 0.5); a 16-bit or float "
        'image is stretched from its own minimum to its maximum to 8 bits. Pillow\'s plain `convert("RGB")` does '
        "neither: it keeps the colour transparent pixels hold (black in most icon sets) and clips 16-bit values.",
        *(
            [
                "",
                f"An image more elongated than {pre['squash_aspect']:g}:1 (longer side / shorter side) is first "
                f"resized to floor({pre['image_size']} / {pre['crop_pct']}) on both sides, ignoring its aspect, so the "
                "model sees all of it instead of the middle of its longer side; the center crop then keeps it whole "
                "when crop_pct is 1.",
            ]
            if pre.get("squash_aspect")
            else []
        ),
        *(
            [
                "",
                "The model's output is the mean of its logits for the image and for the image mirrored left-right "
                "(its head was trained on features averaged that way). `model.onnx` does this inside the graph; "
                "with PyTorch, see below.",
            ]
            if pre.get("flip_average")
            else []
        ),
        "",
        "## Use",
        "",
        "```python",
        "import json, timm, torch",
        "from safetensors.torch import load_file",
        "cfg = json.load(open('config.json'))",
        "model = timm.create_model(cfg['architecture'], num_classes=len(cfg['class_names']))",
        "model.load_state_dict(load_file('model.safetensors'))",
        "model.eval()",
        f"logits = {forward}  # batch: N x 3 x S x S, preprocessed as above",
        f"probs = logits.{'sigmoid()' if config.get('multi_label') else 'softmax(-1)'}",
        "```",
        "",
        f"`model.onnx` (opset {ONNX_OPSET}, input `input` Nx3x{pre['image_size']}x{pre['image_size']}, outputs "
        "`logits` (first) and `embedding`, dynamic batch) was checked against PyTorch with onnxruntime at export "
        f"time: max abs difference {onnx_diff:.2e} (limit {ONNX_TOLERANCE:g}).",
        "",
        *(
            [
                f"`{torchscript['file']}` (TorchScript, traced with torch {torchscript['torch_version']}) gives the "
                "same `(logits, embedding)` with torch alone (no timm, no Labelloop code), mirror averaging inside, "
                "any batch size at this image size: "
                f"`logits, embedding = torch.jit.load('{torchscript['file']}')(batch)`; checked against PyTorch after "
                f"a round trip through the file: max abs difference {torchscript['pytorch_max_abs_diff']:.2e}.",
                "",
            ]
            if torchscript
            else []
        ),
        *(formats_card(formats) if formats else []),
    ]
    return "\n".join(lines)

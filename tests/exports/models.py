"""A real ModelVersion for export tests: a tiny timm model saved with training.ml's save_checkpoint, and
Prediction rows scored by the platform's own code path (load_checkpoint + build_transform + load_image)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from training.models import ModelVersion, Prediction

ARCH = "test_efficientnet"
PREPROCESSING = {"image_size": 48, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic",
                 "crop_pct": 1.0}  # fmt: skip
METRICS = {"accuracy": 0.8125, "macro_f1": 0.79, "holdout_size": 16}


def platform_probabilities(ckpt: Path, items) -> list[list[float]]:
    """Score items the way the platform does (its checkpoint loader, transform and decoder)."""
    return platform_probabilities_of_files(ckpt, [item.file.path for item in items])


def platform_probabilities_of_files(ckpt: Path, sources) -> list[list[float]]:
    """Score image files (paths or file objects) as the platform does."""
    import torch

    from training.ml.checkpoint import load_checkpoint, serving_model
    from training.ml.data import build_transform, load_image

    model, cfg = load_checkpoint(ckpt)
    model = serving_model(model, cfg)
    pre = cfg["preprocessing"]
    transform = build_transform(
        {"interpolation": pre["interpolation"], "mean": tuple(pre["mean"]), "std": tuple(pre["std"])},
        pre["image_size"],
        is_training=False,
        crop_pct=pre["crop_pct"],
        squash_aspect=pre.get("squash_aspect"),
    )
    batch = torch.stack([transform(load_image(source)) for source in sources])
    with torch.inference_mode():
        return model(batch).softmax(-1).tolist()


def make_model_version(
    *,
    project,
    classes,
    items,
    number: int = 1,
    active: bool = True,
    flip_average: bool = False,
    squash_aspect: float | None = None,
    seed: int | None = None,
    pk: int | None = None,
) -> ModelVersion:
    """A version with random weights (seeded by `seed`, else `number`); `pk` forces its primary key. Without
    `squash_aspect` its checkpoint is like those made before the squash rule (imaging.shape): centre crop only."""
    import timm
    import torch

    from training.ml.checkpoint import save_checkpoint

    torch.manual_seed(number if seed is None else seed)
    model = timm.create_model(ARCH, num_classes=len(classes))
    relative = Path("projects") / str(project.pk) / "test-models" / f"v{number}"
    ckpt = save_checkpoint(
        Path(settings.LABELLOOP_DATA_ROOT) / relative,
        model.state_dict(),
        {"architecture": ARCH, "class_names": [c.name for c in classes],
         "preprocessing": {**PREPROCESSING, "flip_average": flip_average, "squash_aspect": squash_aspect},
         "metrics": METRICS},
    )  # fmt: skip
    version = ModelVersion.objects.create(
        pk=pk,
        project=project,
        number=number,
        artifact_path=str(relative),
        architecture=ARCH,
        class_ids=[c.pk for c in classes],
        metrics=METRICS,
        label_count=len(items),
        dataset_hash="d" * 64,
        active=active,
    )
    for item, probs in zip(items, platform_probabilities(ckpt, items), strict=True):
        best = max(range(len(probs)), key=probs.__getitem__)
        Prediction.objects.create(
            item=item,
            model_version=version,
            probabilities=probs,
            predicted_class=classes[best],
            confidence=probs[best],
            uncertainty=1 - probs[best],
        )
    return version

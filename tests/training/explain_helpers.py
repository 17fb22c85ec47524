"""A project with a real (tiny, random) model version for the explanation tests: items, classes, a checkpoint
saved by training.ml's save_checkpoint and Prediction rows scored by the platform's own code path. The items are
patterned images fixed by their position: a one-colour image (the factory's, its colour from the session's item
count) gave a heatmap that was empty for a third of the colours, and an empty one shows a note, not an overlay."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image

from labeling.models import Role
from tests.exports.models import make_model_version


def explained_project(project_factory, label_class_factory, item_factory, member_of, *, slug: str = "zoo", n: int = 4):
    """(project, classes, items, version, annotator, reviewer): 3 classes, `n` unlabeled items, an active version."""
    project = project_factory(slug=slug, name=slug.title(), holdout_fraction=0.0)
    classes = [
        label_class_factory(project=project, name=name, hotkey=str(i + 1), order=i)
        for i, name in enumerate(["cat", "dog", "bird"])
    ]
    items = [item_factory(project=project, priority=1000 - i) for i in range(n)]
    for i, item in enumerate(items):
        item.file.save(item.original_name, ContentFile(patterned_png(i, item.width, item.height)), save=True)
    version = make_model_version(project=project, classes=classes, items=items)
    annotator = member_of(project, Role.ANNOTATOR, f"ann-{slug}")
    reviewer = member_of(project, Role.REVIEWER, f"rev-{slug}")
    return project, classes, items, version, annotator, reviewer


def patterned_png(index: int, width: int, height: int) -> bytes:
    """Colour gradients shifted by `index`: the tiny test model (seed 1) sees some evidence of each class in each."""
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack([(xx * 5 + index * 40) % 256, (yy * 5) % 256, ((xx + yy) * 3 + index * 60) % 256], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def break_checkpoint(version) -> None:
    """Overwrite the version's weights with bytes no loader accepts (a corrupted upload, a half-copied file)."""
    folder = Path(settings.LABELLOOP_DATA_ROOT) / version.artifact_path
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")

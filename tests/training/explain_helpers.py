"""A project with a real (tiny, random) model version for the explanation tests: items, classes, a checkpoint
saved by training.ml's save_checkpoint and Prediction rows scored by the platform's own code path."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

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
    version = make_model_version(project=project, classes=classes, items=items)
    annotator = member_of(project, Role.ANNOTATOR, f"ann-{slug}")
    reviewer = member_of(project, Role.REVIEWER, f"rev-{slug}")
    return project, classes, items, version, annotator, reviewer


def break_checkpoint(version) -> None:
    """Overwrite the version's weights with bytes no loader accepts (a corrupted upload, a half-copied file)."""
    folder = Path(settings.LABELLOOP_DATA_ROOT) / version.artifact_path
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")

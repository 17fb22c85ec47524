"""Fixtures for export tests: a labeled project built through the real annotation services."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from labeling.models import Role, Split
from labeling.services.annotations import annotation_create


@pytest.fixture
def labeled_project(project_factory, item_factory, label_class_factory, member_of):
    """3 classes, 24 labeled items (6 holdout), 2 unlabeled; two items share the original name "cat.png"."""
    project = project_factory(slug="zoo", name="Zoo")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["cat", "dog", "bird"])]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    items = []
    for i in range(24):
        name = "cat.png" if i in (0, 3) else f"img {i:03d}.png"
        item = item_factory(project=project, original_name=name, split=Split.HOLDOUT if i % 4 == 1 else Split.TRAIN)
        annotation_create(item=item, user=annotator, class_ids=[classes[i % 3].pk])
        items.append(item)
    item_factory(project=project)
    item_factory(project=project)
    return project, classes, items, annotator


def run_export(project, tmp_path: Path, fmt: str = "imagefolder", *args: str) -> tuple[Path, dict]:
    """Run `manage.py export_dataset` into tmp_path and return (zip path, manifest)."""
    out = tmp_path / f"{fmt}-{len(list(tmp_path.iterdir()))}.zip"
    call_command("export_dataset", project.slug, "--format", fmt, "--out", str(out), *args, verbosity=0)
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    return out, manifest

"""A taxonomy of thousands of classes is created in a few queries a level, with the hotkeys, order and colours the
one-class-at-a-time path gives. Reported: POST /api/projects/ with 5,000 two-level classes took 30 s (six queries and
a read of every hotkey per class)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from labeling.models import LabelClass, Project
from labeling.selectors.classes import class_paths, class_tree
from labeling.services.projects import label_class_create, label_classes_from_paths

pytestmark = pytest.mark.django_db

PATHS = [f"group {i // 20}/sub {i // 5}/class {i}" for i in range(300)] + ["loose", "group 0/sub 0/extra", "loose/x"]


def _one_at_a_time(project: Project, paths: list[str]) -> None:
    """What label_classes_from_paths did before it inserted a level at a time: label_class_create, path by path."""
    existing = {p: LabelClass.objects.get(pk=pk) for pk, p in class_paths(class_tree(project=project)).items()}
    for path in paths:
        parent = None
        parts = path.split("/")
        for depth in range(len(parts)):
            key = "/".join(parts[: depth + 1])
            if key not in existing:
                existing[key] = label_class_create(project=project, name=parts[depth], parent=parent)
            parent = existing[key]


def _classes(project: Project) -> list[tuple]:
    paths = class_paths(class_tree(project=project))
    rows = LabelClass.objects.filter(project=project).order_by("order", "pk")
    return [(paths[c.pk], c.hotkey, c.order, c.color) for c in rows]


def test_classes_from_paths_match_one_at_a_time_creation_in_few_queries(project_factory):
    # Given two projects that already have a few classes, one with a hotkey taken out of turn
    slow, fast = project_factory(), project_factory()
    for project in (slow, fast):
        label_class_create(project=project, name="group 0")
        label_class_create(project=project, name="kept", hotkey="4")
    _one_at_a_time(slow, PATHS)

    # When the same paths are created in bulk
    with CaptureQueriesContext(connection) as queries:
        made = label_classes_from_paths(project=fast, paths=PATHS)

    # Then the classes, their hotkeys (1-9 then letters, the taken 4 skipped, then none), order and colours are those
    # of one-at-a-time creation
    assert _classes(fast) == _classes(slow)
    assert len(_classes(fast)) == 1 + 15 + 60 + 300 + 3  # kept; groups; subs; classes; loose, loose/x, extra
    assert {path for path, *_ in _classes(fast)} == set(made)
    # in a handful of queries, not several per class (a read, a count, the hotkeys, an insert per level)
    assert len(queries) <= 8, [q["sql"][:80] for q in queries]


def test_creating_a_project_with_thousands_of_classes_is_quick(user_factory, allow_project_creation):
    api = APIClient()
    api.force_authenticate(allow_project_creation(user_factory()))
    paths = [f"group {i // 50}/class {i}" for i in range(5000)]

    with CaptureQueriesContext(connection) as queries:
        answer = api.post("/api/projects/", {"name": "many", "classes": paths}, format="json")

    assert answer.status_code == 201, answer.content
    project = Project.objects.get(slug=answer.json()["slug"])
    assert LabelClass.objects.filter(project=project).count() == 5100
    assert LabelClass.objects.filter(project=project, parent__isnull=True, hotkey="1").count() == 1
    # One INSERT per level and batch (SQLite takes ~140 rows a statement), not six queries a class (30,000 before)
    assert len(queries) < 150, len(queries)

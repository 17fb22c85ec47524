"""Migration 0014: a database where a parent was archived before its subclasses went with it (stop 56's tester archived
"triangle" and its six colours stayed labelable) gets those subclasses archived; nothing else changes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("labeling", "0013_job_number")]
AFTER = [("labeling", "0014_archive_classes_under_archived")]


@pytest.mark.django_db(transaction=True)
def test_the_classes_under_an_archived_class_are_archived_and_no_other():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        project = old.get_model("labeling", "Project").objects.create(name="Shapes", slug="shapes")
        make = old.get_model("labeling", "LabelClass").objects.create
        triangle = make(project=project, name="triangle", archived=True)
        red = make(project=project, name="red", parent=triangle)
        dark = make(project=project, name="dark", parent=red)
        circle = make(project=project, name="circle")
        blue = make(project=project, name="blue", parent=circle)
        gone = make(project=project, name="green", parent=circle, archived=True)

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        archived = dict(new.get_model("labeling", "LabelClass").objects.values_list("pk", "archived"))
        assert archived == {
            triangle.pk: True, red.pk: True, dark.pk: True, circle.pk: False, blue.pk: False, gone.pk: True
        }  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

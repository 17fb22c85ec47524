"""Schema migrations keep what existing projects had."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("labeling", "0004_queue_lease_index")]
AFTER = [("labeling", "0005_project_flip_average")]


def test_existing_projects_keep_plain_embeddings_and_new_ones_average_with_the_mirror():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old_project = executor.loader.project_state(BEFORE).apps.get_model("labeling", "Project")
        old_project.objects.create(name="Before", slug="before")
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        project = executor.loader.project_state(AFTER).apps.get_model("labeling", "Project")
        # Their cached embeddings and trained heads stay valid: nothing is recomputed behind their back.
        assert project.objects.get(slug="before").flip_average is False
        assert project.objects.create(name="After", slug="after").flip_average is True
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_annotations_made_before_shown_at_existed_keep_an_empty_display_time():
    before, after = [("labeling", "0005_project_flip_average")], [("labeling", "0006_annotation_shown_at")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        user = old.get_model("auth", "User").objects.create(username="old-annotator")
        project = old.get_model("labeling", "Project").objects.create(name="Old", slug="old")
        item = old.get_model("labeling", "Item").objects.create(
            project=project, sha256="a" * 64, width=8, height=8, format="PNG", original_name="a.png"
        )
        old.get_model("labeling", "Annotation").objects.create(item=item, user=user, skipped=True)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        annotation = executor.loader.project_state(after).apps.get_model("labeling", "Annotation")
        # Nobody recorded when those images were shown: nothing is made up.
        assert list(annotation.objects.values_list("shown_at", flat=True)) == [None]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_projects_keep_their_training_mode_and_new_ones_default_to_auto():
    before, after = (
        [("labeling", "0008_project_creators_granted_import_roots")],
        [("labeling", "0009_project_training_mode_auto")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("labeling", "Project")
        old.objects.create(name="Head", slug="head-project")  # the old default
        old.objects.create(name="Tuned", slug="tuned-project", training_mode="finetune")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        project = executor.loader.project_state(after).apps.get_model("labeling", "Project")
        # Their runs and caches keep meaning what they did: nobody's project switches to auto behind their back.
        assert dict(project.objects.values_list("slug", "training_mode")) == {
            "head-project": "head",
            "tuned-project": "finetune",
        }
        assert project.objects.create(name="New", slug="new-project").training_mode == "auto"
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

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

"""Starting a dataset export on a large project: the web request only asks whether anything would be exported (the
refusal of an empty export, labeling/services/exports/nothing_to_export); the export plan, which reads every
labeled item, is built once, by the worker. Run with -s to see the request's queries and time."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Job, LabelSource, ResolvedLabel, Role
from tests.factories import api_client, bulk_items

pytestmark = pytest.mark.django_db

ITEMS = 4000


@pytest.fixture
def big_project(project_factory, label_class_factory, member_of):
    """4,000 items, each with a resolved label (one of 3 classes, one annotator)."""
    project = project_factory(slug="big")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["cat", "dog", "bird"])]
    items = bulk_items(project, ITEMS)
    ResolvedLabel.objects.bulk_create(
        [ResolvedLabel(item=item, project=project, source=LabelSource.SINGLE, annotator_count=1) for item in items]
    )
    through = ResolvedLabel.classes.through
    resolved = ResolvedLabel.objects.filter(project=project).order_by("item_id").values_list("pk", flat=True)
    through.objects.bulk_create(
        [through(resolvedlabel_id=pk, labelclass_id=classes[i % 3].pk) for i, pk in enumerate(resolved)]
    )
    return project, member_of(project, Role.MANAGER)


def _start(client, project, body: dict):
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        answer = client.post(f"/api/projects/{project.slug}/exports/dataset/", body, format="json")
        seconds = time.perf_counter() - started
    print(f"\n{body}: HTTP {answer.status_code}, {len(queries.captured_queries)} queries, {seconds * 1000:.0f} ms")
    return answer, queries.captured_queries


def _reads_every_item(queries) -> bool:
    """A query that reads the items' file names (the plan does; asking 'is there any?' need not)."""
    return any("original_name" in q["sql"] and "LIMIT" not in q["sql"] for q in queries)


def test_an_export_of_a_large_project_starts_without_building_the_plan(big_project):
    # Given a project of 4,000 labeled items
    project, manager = big_project

    # When a manager starts a csv export through the API
    answer, queries = _start(api_client(manager), project, {"format": "csv"})

    # Then the job is made, and the request did not read every item (the worker builds the plan, once)
    assert answer.status_code == 202, answer.content
    assert Job.objects.filter(project=project).count() == 1
    assert not _reads_every_item(queries)


def test_an_empty_export_of_a_large_project_is_still_refused_with_the_count(big_project):
    # Given a project of 4,000 labeled items, each with one annotator
    project, manager = big_project

    # When an export asks for items with 3 annotators or more
    answer, queries = _start(api_client(manager), project, {"format": "csv", "min_annotators": 3})

    # Then it is refused as before, naming how many labeled items there are, and no job is made
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": [f"Nothing to export from big: none of its {ITEMS} labeled items matches min annotators 3. "
                   "Nothing was written."]
    }  # fmt: skip
    assert not Job.objects.exists()
    assert not _reads_every_item(queries)

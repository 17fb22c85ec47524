"""The class list API gives each class the keys an annotator presses for it on the labeling page (`keys`, every
level of a taxonomy numbered on its own), worked out once per request from one read of the classes; `hotkey` stays
the stored one."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import LabelClass, Role
from labeling.selectors.keys import key_sequences
from labeling.selectors.queue import label_classes_for_labeling
from tests.factories import token_client
from tests.schema_conformance import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def taxonomy(project_factory, label_class_factory, member_of):
    """120 classes: 3 roots, 4 under each, 9 under each of those, and one 4th level under the first leaf; the stored
    hotkeys ("d" on a leaf, as an import hands them out over the whole tree) are not the page's keys."""
    project = project_factory(slug="tax")
    roots = [label_class_factory(project=project, name=f"root {r}") for r in range(3)]
    mids = [label_class_factory(project=project, name=f"mid {m}", parent=roots[m // 4]) for m in range(12)]
    leaves = [label_class_factory(project=project, name=f"leaf {n}", parent=mids[n // 9]) for n in range(104)]
    deep = label_class_factory(project=project, name="deep", parent=leaves[0])
    LabelClass.objects.filter(pk=leaves[5].pk).update(hotkey="d")
    LabelClass.objects.filter(pk=leaves[8].pk).update(archived=True)
    client = token_client(member_of(project, Role.ANNOTATOR, "ann"))
    return project, roots, mids, leaves, deep, client


def test_each_class_has_the_labeling_pages_keys(taxonomy):
    project, roots, mids, leaves, deep, client = taxonomy
    # When a script lists the classes
    with CaptureQueriesContext(connection) as captured:
        answer = client.get(f"/api/projects/{project.slug}/classes/")
    assert answer.status_code == 200
    assert_matches_schema(answer, "/api/projects/{slug}/classes/")
    rows = {row["id"]: row for row in answer.json()}

    # Then each active class has the labeling page's keys, one per level, and its stored hotkey unchanged
    page = key_sequences(label_classes_for_labeling(project=project))
    assert len(rows) == 120
    assert {pk: row["keys"] for pk, row in rows.items() if not row["archived"]} == page
    assert rows[roots[0].pk]["keys"] == ["1"]
    assert rows[mids[5].pk]["keys"] == ["2", "2"]  # root 1's second child
    assert rows[leaves[5].pk]["keys"] == ["1", "1", "6"]
    assert rows[leaves[5].pk]["hotkey"] == "d"
    assert rows[deep.pk]["keys"] == ["1", "1", "1", "1"]
    assert rows[deep.pk]["path"] == "root 0 / mid 0 / leaf 0 / deep"
    # ... an archived class has none (the page does not offer it), and its later sibling moved up
    assert rows[leaves[8].pk]["keys"] == []
    # ... from one read of the classes, not one per class (or per level past the third)
    assert sum("labeling_labelclass" in q["sql"] for q in captured.captured_queries) == 1


def test_a_flat_projects_keys_are_its_stored_hotkeys(project_factory, label_class_factory, member_of):
    project = project_factory(slug="flat")
    for name, key in (("cat", "c"), ("dog", ""), ("skip me", "s")):  # "s" is the page's skip key
        label_class_factory(project=project, name=name, hotkey=key)
    client = token_client(member_of(project, Role.MANAGER, "boss"))
    rows = {row["name"]: row for row in client.get("/api/projects/flat/classes/").json()}
    assert {name: row["keys"] for name, row in rows.items()} == {"cat": ["c"], "dog": ["1"], "skip me": ["2"]}
    # A class added through the API answers with its keys too
    added = client.post("/api/projects/flat/classes/create/", {"name": "bird", "hotkey": "w"}, format="json")
    assert added.status_code == 201, added.content
    assert added.json()["keys"] == ["w"]
    assert added.json()["stored_path"] == "bird"


def test_each_class_has_the_stored_path_exports_and_predictions_name_it_by(taxonomy):
    project, roots, _, _, deep, client = taxonomy
    # When a script lists the classes
    listed = {c["id"]: c for c in client.get(f"/api/projects/{project.slug}/classes/").json()}
    # Then each class has its page path and its stored path ("/" between levels, as exports and the prediction
    # service spell it), so a script can match a prediction's class to the list
    assert listed[deep.pk]["path"] == "root 0 / mid 0 / leaf 0 / deep"
    assert listed[deep.pk]["stored_path"] == "root 0/mid 0/leaf 0/deep"
    assert listed[roots[2].pk]["stored_path"] == "root 2"

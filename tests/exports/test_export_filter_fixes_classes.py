"""A dataset export's class filter: a class stands for itself and its subtree, and paths are spelled as imports
spell them (tester's reports on a digits project: even/odd over 0-9)."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from labeling.models import Role
from labeling.selectors.exports import ExportFilters, export_plan
from labeling.services.annotations import annotation_create
from tests.exports.conftest import run_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def digits(project_factory, item_factory, label_class_factory, member_of):
    """even/{0,2,4,6,8} and odd/{1,3,5,7,9}; one item per digit, plus one item labeled "even" itself."""
    project = project_factory(slug="digits")
    even = label_class_factory(project=project, name="even", order=0)
    odd = label_class_factory(project=project, name="odd", order=1)
    leaves = [label_class_factory(project=project, name=str(d), parent=(odd if d % 2 else even), order=2 + d)
              for d in range(10)]  # fmt: skip
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    items = {}
    for d, leaf in enumerate(leaves):
        items[d] = item_factory(project=project)
        annotation_create(item=items[d], user=annotator, class_ids=[leaf.pk])
    items["even"] = item_factory(project=project)
    annotation_create(item=items["even"], user=annotator, class_ids=[even.pk])
    return project, items


def ids(project, *classes: str) -> set[int]:
    return {row.item_id for row in export_plan(project=project, filters=ExportFilters(classes=classes)).rows}


def test_a_parent_class_in_the_filter_stands_for_its_whole_subtree(digits):
    project, items = digits
    evens = {items[d].pk for d in (0, 2, 4, 6, 8)} | {items["even"].pk}
    assert ids(project, "even") == evens
    assert ids(project, "odd") == {items[d].pk for d in (1, 3, 5, 7, 9)}
    assert ids(project, "even/4") == ids(project, "4") == {items[4].pk}
    assert ids(project, "even", "3") == evens | {items[3].pk}


def test_the_command_exports_the_subtree_of_a_parent(digits, tmp_path):
    project, _ = digits
    _, manifest = run_export(project, tmp_path, "csv", "--classes", "even")
    assert manifest["counts"]["items"] == 6
    assert sorted(manifest["counts"]["per_class"]) == ["even", "even/0", "even/2", "even/4", "even/6", "even/8"]


def test_the_api_exports_the_subtree_of_a_parent(digits, member_of, django_capture_on_commit_callbacks):
    project, _ = digits
    client = APIClient()
    client.force_authenticate(member_of(project, Role.ML_ENGINEER, "ml"))
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post("/api/projects/digits/exports/dataset/", {"format": "csv", "classes": ["even"]},
                             format="json")  # fmt: skip
    assert answer.status_code == 202, answer.content
    job = client.get(f"/api/projects/digits/jobs/{answer.json()['id']}/").json()
    assert job["status"] == "succeeded", job
    assert job["result"]["item_count"] == 6


@pytest.mark.parametrize("spelling", ["/even/0/", "even / 0", " even/0 ", "even/ 0/", "0"])
def test_class_paths_are_spelled_as_imports_spell_them(digits, spelling):
    project, items = digits
    assert ids(project, spelling) == {items[0].pk}


def test_an_entry_that_is_no_class_path_is_refused_by_name(digits):
    project, _ = digits
    with pytest.raises(ValidationError, match=r"Not a class path: 'even//0' \(empty class name"):
        ids(project, "even//0")
    with pytest.raises(ValidationError, match="Unknown class"):
        ids(project, "/even/10/")


def test_no_classes_still_means_every_class(digits, tmp_path):
    project, _ = digits
    _, manifest = run_export(project, tmp_path, "jsonl")
    assert manifest["counts"]["items"] == 11
    assert json.dumps(manifest["filters"]["classes"]) == "[]"

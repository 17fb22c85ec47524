"""The empty-export refusal asks the database whether any item passes the export's filters instead of building the
export plan (labeling/services/exports/nothing_to_export). Its query must keep exactly the items the plan keeps, for
every filter, or an export would be refused that has items, or started that has none."""

from __future__ import annotations

import itertools

import pytest

from labeling.models import LabelSource, ResolvedLabel, Review, Role, TaskType, Verdict
from labeling.selectors.exports import ExportFilters, export_plan
from labeling.services import resolution
from labeling.services.annotations import annotation_create
from labeling.services.exports.nothing_to_export import _exported_labels, export_would_hold_items

pytestmark = pytest.mark.django_db

CLASS_FILTERS = [(), ("cat",), ("animal",), ("bird",), ("animal/dog", "bird")]
COMBOS = list(itertools.product([False, True], [0, 1, 3, 4], CLASS_FILTERS))


def _project(project_factory, item_factory, label_class_factory, member_of, task_type):
    """Items the filters tell apart: three annotators agreeing, a majority, a reviewed one, an imported label with
    no annotator, a resolved label with no class, a label on a parent class's child, an unlabeled item."""
    project = project_factory(annotations_per_item=3, task_type=task_type)
    animal = label_class_factory(project=project, name="animal")
    cat = label_class_factory(project=project, name="cat", parent=animal)
    dog = label_class_factory(project=project, name="dog", parent=animal)
    bird = label_class_factory(project=project, name="bird")
    users = [member_of(project, Role.ANNOTATOR) for _ in range(3)]
    items = [item_factory(project=project) for _ in range(7)]
    agreed, majority, dogs, reviewed, imported, classless, _unlabeled = items
    answers = [(cat, cat, dog, cat), (cat, cat, dog, dog), (cat, dog, dog, dog)]
    for user, (a, m, d, r) in zip(users, answers, strict=True):
        annotation_create(item=agreed, user=user, class_ids=[a.pk])
        annotation_create(item=majority, user=user, class_ids=[m.pk])
        annotation_create(item=dogs, user=user, class_ids=[d.pk])
        annotation_create(item=reviewed, user=user, class_ids=[r.pk])
    Review.objects.create(annotation=reviewed.annotations.first(), reviewer=users[0], verdict=Verdict.CORRECT)
    resolution.resolved_label_recompute(item=reviewed)
    ResolvedLabel.objects.create(item=imported, project=project, source=LabelSource.IMPORT).classes.add(bird)
    ResolvedLabel.objects.create(item=classless, project=project, source=LabelSource.SINGLE, annotator_count=3)
    return project


@pytest.mark.parametrize("task_type", [TaskType.SINGLE, TaskType.MULTI])
def test_the_refusal_keeps_the_items_the_plan_keeps_for_every_filter(
    task_type, project_factory, item_factory, label_class_factory, member_of
):
    # Given a project whose items the filters tell apart
    project = _project(project_factory, item_factory, label_class_factory, member_of, task_type)
    kept_somewhere, kept_nowhere = 0, 0

    for only_reviewed, min_annotators, classes in COMBOS:
        for only_agreed in (False, True):
            filters = ExportFilters(
                only_reviewed=only_reviewed, only_agreed=only_agreed, min_annotators=min_annotators, classes=classes
            )
            # When the refusal and the plan are asked about the same filters
            planned = {row.item_id for row in export_plan(project=project, filters=filters).rows}

            # Then they agree on whether the export holds anything, and (but for "only agreed", which the plan
            # works out) on which items
            assert export_would_hold_items(project=project, filters=filters) == bool(planned), filters
            if not only_agreed:
                assert set(_exported_labels(project=project, filters=filters).values_list("item_id", flat=True)) == (
                    planned
                ), filters
            kept_somewhere += bool(planned)
            kept_nowhere += not planned

    # and the filters both kept and left out items (the comparison was not vacuous)
    assert kept_somewhere > 10
    assert kept_nowhere > 10

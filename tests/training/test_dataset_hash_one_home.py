"""One dataset hash: a model's card names the same dataset hash as the manifest of an export of the same labels."""

from __future__ import annotations

import pytest

from labeling.models import Role, Split
from labeling.selectors.exports import ExportFilters
from labeling.services.annotations import annotation_create
from labeling.services.exports import dataset_export_write
from labeling.services.projects import label_class_archive
from training.models import RunMode, TrainingRun
from training.services.runs import training_run_enqueue, training_run_execute
from training.services.snapshot import label_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def zoo(project_factory, label_class_factory, item_factory, member_of):
    """A 4-level taxonomy (animal / mammal / feline / cat and 3 more leaves), 8 items labeled through the service,
    2 of them in the holdout."""
    project = project_factory()
    animal = label_class_factory(project=project, name="animal", order=0)
    mammal = label_class_factory(project=project, name="mammal", parent=animal, order=1)
    feline = label_class_factory(project=project, name="feline", parent=mammal, order=2)
    canine = label_class_factory(project=project, name="canine", parent=mammal, order=3)
    leaves = [
        label_class_factory(project=project, name=name, parent=parent, order=4 + i)
        for i, (name, parent) in enumerate([("cat", feline), ("lion", feline), ("dog", canine), ("wolf", canine)])
    ]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for i in range(8):
        item = item_factory(project=project, split=Split.HOLDOUT if i in (1, 6) else Split.TRAIN)
        annotation_create(item=item, user=annotator, class_ids=[leaves[i % 4].pk])
    return project, leaves


def _export_manifest(project) -> dict:
    return dataset_export_write(project=project, fmt="jsonl", filters=ExportFilters())["manifest"]


def test_the_snapshot_a_model_is_trained_on_has_the_export_manifests_dataset_hash(zoo):
    project, _ = zoo
    snapshot = label_snapshot(project=project)  # what a round stores on its run and its model version
    manifest = _export_manifest(project)
    assert snapshot.label_count == manifest["counts"]["items"] == 8
    assert snapshot.dataset_hash == manifest["dataset_hash"]


def test_a_training_runs_dataset_hash_matches_an_export_of_the_same_labels(zoo):
    # given every item labeled (nothing left to rank, so the cold-start round trains no network)
    project, _ = zoo
    run = training_run_enqueue(project=project, trigger="manual", mode=RunMode.COLD_START, send=False)
    # when the run executes as a worker would
    summary = training_run_execute(run_id=run.pk)
    # then the run (whose hash a model version copies onto its card) names the export's dataset
    assert summary["status"] == "succeeded", summary
    assert TrainingRun.objects.get(pk=run.pk).dataset_hash == _export_manifest(project)["dataset_hash"]


def test_labels_on_an_archived_class_still_give_the_same_hash(zoo):
    # given a class archived after it was used: the model no longer has an output for it
    project, leaves = zoo
    label_class_archive(project=project, class_id=leaves[3].pk)
    # then the model card and the export still describe one and the same labeled dataset
    assert label_snapshot(project=project).dataset_hash == _export_manifest(project)["dataset_hash"]


def test_changing_a_label_changes_both_hashes_alike(zoo, member_of, item_factory):
    project, leaves = zoo
    before = label_snapshot(project=project).dataset_hash
    item = item_factory(project=project)
    annotation_create(item=item, user=member_of(project, Role.ANNOTATOR, "ann2"), class_ids=[leaves[0].pk])
    after = label_snapshot(project=project).dataset_hash
    assert after != before
    assert after == _export_manifest(project)["dataset_hash"]

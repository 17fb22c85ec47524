"""This machine's caches of a version (the extracted ONNX the prediction service loads, the drift reference
embeddings) belong to that version row, not to its pk: a database created afresh over an old data folder numbers
its versions and items from 1 again, and must not be served the old database's model or compared with its images."""

from __future__ import annotations

import pytest

from labeling.models import Job, JobKind
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def _close(a, b) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4


def test_a_version_with_the_pk_of_an_old_databases_version_is_served_from_its_own_export(
    served_project, api_key, predict, tmp_path, monkeypatch
):
    from serving import wsgi_predict
    from serving.runtime.registry import ModelRegistry
    from tests.exports.models import make_model_version
    from tests.serving.conftest import export_version

    # Given v1 served once, so its ONNX sits in this machine's serving cache
    project, classes, items, old = served_project
    _, token = api_key(project)
    image = items[0].file.read()
    status, before = predict(project.slug, token, images=[image])
    assert status == 200, before

    # When the database starts afresh over the same data folder (the prediction service still running): its v1
    # has the old v1's pk but other weights
    pk = old.pk
    old.delete()
    Job.objects.filter(project=project, kind=JobKind.EXPORT_MODEL).delete()
    reborn = make_model_version(project=project, classes=classes, items=items, number=1, seed=7, pk=pk)
    export_version(project, 1, tmp_path / "reborn")
    status, running = predict(project.slug, token, images=[image])
    # and once the service has started again
    monkeypatch.setattr(wsgi_predict, "registry", ModelRegistry(reload_seconds=0))
    status_restarted, restarted = predict(project.slug, token, images=[image])

    # Then both answer with the new v1's model, not with the one in memory or the files the old one left
    assert (status, status_restarted) == (200, 200), (running, restarted)
    expected = reborn.predictions.get(item=items[0]).probabilities
    assert not _close(before["predictions"][0]["probabilities"], expected)  # the two models do differ
    assert _close(running["predictions"][0]["probabilities"], expected)
    assert _close(restarted["predictions"][0]["probabilities"], expected)


def test_a_drift_reference_made_for_an_old_databases_version_is_not_taken_for_a_new_ones(project_factory):
    import numpy as np

    from serving.services.drift_reference import _cache_path, _cache_save, reference_cached

    # Given a drift check's reference embeddings cached for version 1 of a project
    project = project_factory()
    old = ModelVersion.objects.create(project=project, number=1, artifact_path="x", architecture="x", class_ids=[])
    _cache_save(_cache_path(old.pk), {1: np.ones(8, np.float16), 2: np.zeros(8, np.float16)})
    assert reference_cached(version_pk=old.pk)[0].shape == (2, 8)

    # When a new database's version gets the same pk
    pk = old.pk
    old.delete()
    ModelVersion.objects.create(pk=pk, project=project, number=1, artifact_path="x", architecture="x", class_ids=[])

    # Then no reference is known for it yet (the next drift check embeds its own labeled images)
    assert reference_cached(version_pk=pk) is None
    # and a version that no longer exists has none either
    ModelVersion.objects.filter(pk=pk).delete()
    assert reference_cached(version_pk=pk) is None


def test_a_drift_reference_made_under_the_old_pixel_rule_is_made_again(project_factory):
    """Requests of transparent or 16-bit images are decoded by imaging.pixels now; a reference embedded before that
    would read as drift on every window of such a project."""
    import numpy as np

    from serving.services.drift_reference import _cache_path, _cache_save, reference_cached

    project = project_factory()
    version = ModelVersion.objects.create(project=project, number=1, artifact_path="x", architecture="x", class_ids=[])
    path = _cache_path(version.pk)
    _cache_save(path, {1: np.ones(8, np.float16), 2: np.zeros(8, np.float16)})
    assert reference_cached(version_pk=version.pk)[0].shape == (2, 8)

    with np.load(path) as data:  # the same file as a release before the rule wrote it: no pixels entry
        np.savez(path.with_suffix(".tmp.npz"), ids=data["ids"], embeddings=data["embeddings"])
    path.with_suffix(".tmp.npz").replace(path)
    assert reference_cached(version_pk=version.pk) is None

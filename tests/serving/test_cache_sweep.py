"""This machine's caches of model versions stay bounded: the prediction service's extracted exports and the drift
checks' reference embeddings of versions nothing serves any more are removed, and what was used within the hour
(or is any project's active version) is kept. Without the sweeps, every version a project ever activated left an
ONNX file (14 MB for Lite0) on the serving machine for as long as the install lived."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from training.models import ModelVersion

pytestmark = pytest.mark.django_db

HOURS_AGO = 2 * 3600


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _activate(version: ModelVersion) -> None:
    ModelVersion.objects.filter(project=version.project).update(active=False)
    ModelVersion.objects.filter(pk=version.pk).update(active=True)


def _serving_cache() -> set[str]:
    root = Path(settings.LABELLOOP_DATA_ROOT) / "serving-cache"
    return {p.name for p in root.iterdir() if not p.name.startswith(".")}


def test_the_service_removes_the_extracted_models_of_versions_no_project_serves(
    served_project, api_key, predict, tmp_path
):
    from serving.selectors.models import version_cache_name
    from tests.exports.models import make_model_version
    from tests.serving.conftest import export_version

    project, classes, items, v1 = served_project
    _, token = api_key(project)
    image = items[0].file.read()

    def served() -> int:
        status, payload = predict(project.slug, token, images=[image])
        assert status == 200, payload
        return payload["predictions"][0]["version"]

    # Given v1 served, then v2 activated and served
    assert served() == 1
    v2 = make_model_version(project=project, classes=classes, items=items, number=2, active=False)
    export_version(project, 2, tmp_path / "v2")
    _activate(v2)
    assert served() == 2
    name = {v.number: version_cache_name(version_pk=v.pk) for v in (v1, v2)}
    # then v1's folder stays while a process may still be loading from it (used within the hour)
    assert _serving_cache() == {name[1], name[2]}

    # When v3 becomes active an hour later
    _age(Path(settings.LABELLOOP_DATA_ROOT) / "serving-cache" / name[1], HOURS_AGO)
    _age(Path(settings.LABELLOOP_DATA_ROOT) / "serving-cache" / name[2], HOURS_AGO)
    v3 = make_model_version(project=project, classes=classes, items=items, number=3, active=False)
    export_version(project, 3, tmp_path / "v3")
    _activate(v3)
    assert served() == 3

    # Then only the active version's model is left on disk
    assert _serving_cache() == {version_cache_name(version_pk=v3.pk)}
    # and a version made active again is served again (extracted from its export once more)
    _activate(v1)
    assert served() == 1
    assert _serving_cache() == {name[1], version_cache_name(version_pk=v3.pk)}


def test_the_sweep_keeps_every_projects_active_model_and_removes_half_written_leftovers(
    served_project, api_key, predict, project_factory, label_class_factory, item_factory, tmp_path
):
    from serving.runtime.registry import serving_cache_sweep
    from serving.selectors.models import version_cache_name
    from tests.exports.models import make_model_version

    # Given two projects' active models in the cache, both loaded long ago, and a crashed extraction's leftover
    project, _classes, items, v1 = served_project
    _, token = api_key(project)
    assert predict(project.slug, token, images=[items[0].file.read()])[0] == 200
    other = project_factory(slug="other")
    other_classes = [label_class_factory(project=other, name=n, order=i) for i, n in enumerate("ab")]
    other_v1 = make_model_version(project=other, classes=other_classes, items=[item_factory(project=other)])
    root = Path(settings.LABELLOOP_DATA_ROOT) / "serving-cache"
    (root / version_cache_name(version_pk=other_v1.pk)).mkdir()
    (root / ".load-crashed").mkdir()
    (root / "17").mkdir()  # a folder named by pk alone (before versions' caches carried their creation time)
    for entry in root.iterdir():
        _age(entry, HOURS_AGO)

    # When a sweep runs
    swept = serving_cache_sweep()

    # Then both active models stay and the rest goes
    assert sorted(swept) == [".load-crashed", "17"]
    assert _serving_cache() == {version_cache_name(version_pk=v1.pk), version_cache_name(version_pk=other_v1.pk)}


def test_drift_references_go_with_their_version_or_once_the_log_no_longer_holds_its_predictions(
    project_factory, settings
):
    from serving.selectors.models import version_cache_name
    from serving.services.drift_reference import _cache_path, _cache_save, drift_reference_sweep, reference_cached

    settings.LABELLOOP_PREDICTION_LOG_KEEP_DAYS = 30
    project = project_factory()

    def version(number: int, active: bool) -> ModelVersion:
        made = ModelVersion.objects.create(
            project=project, number=number, active=active, artifact_path="x", architecture="x", class_ids=[]
        )
        _cache_save(_cache_path(made.pk), {1: np.ones(8, np.float16), 2: np.zeros(8, np.float16)})
        return made

    # Given references of the active version, of an inactive one used last week and of one unused for 40 days,
    # and of a version deleted since
    active, last_week, long_ago, deleted = version(4, True), version(3, False), version(2, False), version(1, False)
    _age(_cache_path(active.pk), 40 * 86400)
    _age(_cache_path(last_week.pk), 7 * 86400)
    _age(_cache_path(long_ago.pk), 40 * 86400)
    gone = version_cache_name(version_pk=deleted.pk)
    _age(_cache_path(deleted.pk), HOURS_AGO)
    deleted.delete()

    # When the hourly drift checks sweep
    swept = drift_reference_sweep()

    # Then "most drifted" can still compare the active and last week's versions' predictions
    assert sorted(swept) == sorted([f"{gone}.npz", f"{version_cache_name(version_pk=long_ago.pk)}.npz"])
    assert reference_cached(version_pk=active.pk) is not None
    assert reference_cached(version_pk=last_week.pk) is not None
    assert reference_cached(version_pk=long_ago.pk) is None
    # and with a log kept forever, an inactive version's reference is kept forever
    settings.LABELLOOP_PREDICTION_LOG_KEEP_DAYS = 0
    _age(_cache_path(last_week.pk), 4000 * 86400)
    assert drift_reference_sweep() == []

"""While the active version is being exported, a service process that has loaded no version of the project yet
(restarted, or the project's first request) answers with the newest older version that has an export, as README
promises, instead of 409 for the whole export; it still asks a worker to export the active version."""

from __future__ import annotations

import pytest

from labeling.models import Job, JobKind
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def test_a_fresh_service_answers_with_the_exported_v1_while_the_active_v2_has_no_export(
    served_project, api_key, predict
):
    # Given v1 exported, then v2 made active by a training run and not exported yet
    project, classes, items, v1 = served_project
    ModelVersion.objects.filter(pk=v1.pk).update(active=False)
    v2 = ModelVersion.objects.create(project=project, number=2, artifact_path="projects/none", architecture="x",
                                     class_ids=[c.pk for c in classes], active=True)  # fmt: skip
    _, token = api_key(project)
    exports_before = Job.objects.filter(project=project, kind=JobKind.EXPORT_MODEL).count()

    # When a client asks a service that never loaded this project (a fresh registry) for a prediction
    status, answer = predict(project.slug, token, images=[items[0].file.read()])

    # Then v1 answers, and says so; a worker was asked to export v2
    assert status == 200, answer
    assert answer["version"] == 1
    assert answer["predictions"][0]["version"] == 1
    asked = Job.objects.filter(project=project, kind=JobKind.EXPORT_MODEL).exclude(params__version_id=v1.pk)
    assert Job.objects.filter(project=project, kind=JobKind.EXPORT_MODEL).count() == exports_before + 1
    assert asked.get().params["version_id"] == v2.pk


def test_no_exported_version_at_all_still_answers_409(model_project, api_key, predict):
    # Given v1 and active v2, neither exported
    from tests.factories import png_bytes

    project, classes, _ = model_project
    for number in (1, 2):
        ModelVersion.objects.create(project=project, number=number, artifact_path="projects/none", architecture="x",
                                    class_ids=[c.pk for c in classes], active=number == 2)  # fmt: skip
    _, token = api_key(project)

    status, answer = predict(project.slug, token, images=[png_bytes(1)])

    assert status == 409
    assert "no exported model for the active version" in answer["error"]

"""The prediction service answers with the project's active model exported to ONNX: the same probabilities the
platform computed for the same images, top-k class paths, the version and a prediction id, all logged."""

from __future__ import annotations

import pytest

from serving.models import PredictionLog
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def platform_probabilities(version, items):
    by_item = {p.item_id: p.probabilities for p in version.predictions.all()}
    return [by_item[item.pk] for item in items]


def test_predictions_equal_the_platforms_and_are_logged(served_project, api_key, predict):
    # Given a project whose active v1 is exported, and its API key
    project, _, items, version = served_project
    _, token = api_key(project)

    # When a client sends two images as files and three as JSON base64
    status, multi = predict(project.slug, token, files=[(f"{i}.png", items[i].file.read()) for i in (0, 1)])
    assert status == 200, multi
    status, batch = predict(project.slug, token, images=[items[i].file.open("rb").read() for i in (2, 3, 4)])
    assert status == 200, batch

    # Then each answer is the platform's probability vector, with the class paths ranked and v1 named
    answers = multi["predictions"] + batch["predictions"]
    expected = platform_probabilities(version, items[:5])
    assert multi["classes"] == ["cat", "dog", "bird"]
    for got, want in zip(answers, expected, strict=True):
        assert max(abs(a - b) for a, b in zip(got["probabilities"], want, strict=True)) < 1e-4
        assert got["version"] == 1
        best = max(range(3), key=want.__getitem__)
        assert got["top_k"][0]["class"] == ["cat", "dog", "bird"][best]
        assert [t["probability"] for t in got["top_k"]] == sorted(got["probabilities"], reverse=True)
    assert [a["name"] for a in answers[:2]] == ["0.png", "1.png"]

    # And the log holds every prediction under its id once the buffer is written
    assert PredictionLog.objects.count() == 0  # nothing written inside the request
    assert predict.log.flush() == 5
    logged = {row.uid.hex: row for row in PredictionLog.objects.filter(project=project)}
    for answer in answers:
        row = logged[answer["id"].replace("-", "")]
        assert row.version_number == 1
        assert row.top_class == answer["top_k"][0]["class"]
        assert row.confidence == pytest.approx(answer["top_k"][0]["probability"], abs=1e-5)
        assert row.margin == pytest.approx(
            answer["top_k"][0]["probability"] - answer["top_k"][1]["probability"], abs=1e-5
        )
        assert row.image  # kept: the default is 30 days

    # And when the ONNX graph has an embedding output, each row keeps that image's embedding (float16)
    import numpy as np

    from serving import wsgi_predict
    from serving.runtime.preprocess import image_decode, serving_limits, to_input

    model = wsgi_predict.registry.model_for(project.pk)
    row = logged[answers[0]["id"].replace("-", "")]
    if model.embedding_name is None:
        assert row.embedding is None
    else:
        image = image_decode(items[0].file.open("rb").read(), limits=serving_limits()).image
        _, embedding = model.run(to_input(image, model.preprocessing)[None])
        logged_embedding = np.frombuffer(bytes(row.embedding), dtype=np.float16)
        assert np.allclose(logged_embedding, embedding[0], atol=1e-2, rtol=1e-2)


def test_top_k_is_capped_at_the_number_of_classes(served_project, api_key, predict):
    project, _, items, _ = served_project
    _, token = api_key(project)
    status, answer = predict(project.slug, token, images=[items[0].file.read()], query="top_k=1")
    assert status == 200
    assert len(answer["predictions"][0]["top_k"]) == 1
    _, answer = predict(project.slug, token, images=[items[0].file.open("rb").read()], query="top_k=50")
    assert len(answer["predictions"][0]["top_k"]) == 3


def test_an_active_version_not_exported_yet_answers_409_and_asks_a_worker_to_export_it(
    model_project, api_key, predict, settings
):
    # Given an active version whose checkpoint was never exported to ONNX (and no worker that could)
    from labeling.models import Job, JobKind

    project, classes, _ = model_project
    ModelVersion.objects.create(project=project, number=1, artifact_path="projects/none", architecture="x",
                                class_ids=[c.pk for c in classes], active=True)  # fmt: skip
    _, token = api_key(project)

    # When a client asks for a prediction
    status, answer = predict(project.slug, token, images=[b"\x89PNG" + b"x" * 10])
    assert status == 400  # a bad image is refused before any model is looked up
    from tests.factories import png_bytes

    status, answer = predict(project.slug, token, images=[png_bytes(1)])

    # Then it is told that the active version has no export and where to make one; an export was asked for
    assert status == 409
    assert "no exported model for the active version" in answer["error"]
    assert "model exports page" in answer["error"]
    assert Job.objects.filter(project=project, kind=JobKind.EXPORT_MODEL).count() == 1
    assert predict.log.records == []


def test_a_project_without_a_model_answers_409(model_project, api_key, predict):
    from tests.factories import png_bytes

    project, _, _ = model_project
    _, token = api_key(project)
    status, answer = predict(project.slug, token, images=[png_bytes(1)])
    assert status == 409
    assert "no active model" in answer["error"]

"""The prediction service answers with the project's active model exported to ONNX: the same probabilities the
platform computed for the same images, top-k class paths, the version and a prediction id, all logged."""

from __future__ import annotations

import pytest

from serving.models import DEFAULT_LOW_CONFIDENCE_THRESHOLD, PredictedLabel, PredictionLog
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
        assert 0 < row.latency_ms < 60_000  # the request's time in the service, for the Monitoring page

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


@pytest.mark.parametrize("squash_aspect", [2.0, None], ids=["squashing version", "version from before the rule"])
def test_an_elongated_image_gets_the_platforms_answer(model_project, api_key, predict, tmp_path, squash_aspect):
    """A 3:1 banner: the service squashes it as training did for a version that records squash_aspect, and centre
    crops it for an older version, so either way it answers what the platform computes for the same file."""
    import io

    import numpy as np
    from PIL import Image

    from tests.exports.models import make_model_version, platform_probabilities_of_files
    from tests.serving.conftest import export_version
    from training.services.exports import checkpoint_dir

    project, classes, items = model_project
    version = make_model_version(project=project, classes=classes, items=items, squash_aspect=squash_aspect)
    export_version(project, 1, tmp_path / "exports")
    pixels = np.full((60, 180, 3), 255, dtype=np.uint8)
    pixels[:, :30] = (200, 30, 30)
    pixels[:, -30:] = (30, 30, 200)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    _, token = api_key(project)

    status, answer = predict(project.slug, token, images=[buffer.getvalue()])

    assert status == 200, answer
    want = platform_probabilities_of_files(checkpoint_dir(version), [io.BytesIO(buffer.getvalue())])[0]
    got = answer["predictions"][0]["probabilities"]
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-4


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


def activate(version) -> None:
    ModelVersion.objects.filter(project=version.project, active=True).update(active=False)
    ModelVersion.objects.filter(pk=version.pk).update(active=True)


def test_a_request_keeps_the_model_it_started_with_when_a_new_version_is_swapped_in(served_project, predict, tmp_path):
    # Given v1 served and v2 exported
    from serving import wsgi_predict
    from serving.runtime.preprocess import image_decode, serving_limits, to_input
    from tests.exports.models import make_model_version
    from tests.serving.conftest import export_version

    project, classes, items, v1 = served_project
    v2 = make_model_version(project=project, classes=classes, items=items, number=2, active=False)
    export_version(project, 2, tmp_path / "v2")
    in_flight = wsgi_predict.registry.model_for(project.pk)

    # When v2 becomes active and the next request picks it up
    activate(v2)
    swapped = wsgi_predict.registry.model_for(project.pk)

    # Then the new request gets v2, and the request that started on v1 still finishes on v1's session
    assert (in_flight.number, swapped.number) == (1, 2)
    image = image_decode(items[0].file.read(), limits=serving_limits()).image
    probs, _ = in_flight.run(to_input(image, in_flight.preprocessing)[None])
    expected = v1.predictions.get(item=items[0]).probabilities
    assert max(abs(a - b) for a, b in zip(probs[0], expected, strict=True)) < 1e-4


def test_a_new_version_without_an_export_is_exported_while_the_old_one_answers(
    served_project, api_key, predict, tmp_path
):
    # Given v1 served, then v2 made active by a training round before anyone exported it
    from labeling.models import Job, JobKind
    from tests.exports.models import make_model_version
    from tests.serving.conftest import export_version

    project, classes, items, _ = served_project
    _, token = api_key(project)
    image = items[0].file.read()
    assert predict(project.slug, token, images=[image])[1]["version"] == 1
    v2 = make_model_version(project=project, classes=classes, items=items, number=2, active=False)
    activate(v2)

    # When a client asks: v1 still answers (the answer says so), and the service asked for v2's export
    status, answer = predict(project.slug, token, images=[image])
    assert (status, answer["version"]) == (200, 1)
    exports = Job.objects.filter(project=project, kind=JobKind.EXPORT_MODEL, params__version_id=v2.pk)
    assert exports.count() == 1

    # Then once the export is there, v2 answers
    export_version(project, 2, tmp_path / "v2")
    assert predict(project.slug, token, images=[image])[1]["version"] == 2


def test_an_int8_service_runs_the_int8_file_for_its_cpu_and_a_drift_reference_follows(
    served_project, api_key, predict, settings
):
    # Given a service told to run INT8 (the export holds FP32 and both INT8 files)
    import numpy as np

    from serving import wsgi_predict
    from serving.runtime.registry import served_file
    from training.ml.export_files import int8_files_for_this_cpu

    settings.LABELLOOP_SERVING_PRECISION = "int8"
    project, classes, items, version = served_project
    _, token = api_key(project)

    # When a client asks for predictions
    status, body = predict(project.slug, token, images=[items[i].file.open("rb").read() for i in range(4)])
    assert status == 200, body

    # Then the model answering is the INT8 file that suits this CPU, and its answers are probability vectors of
    # the same classes, with v1 named
    model = wsgi_predict.registry.model_for(project.pk)
    assert model.onnx_file == int8_files_for_this_cpu()[0]
    for answer in body["predictions"]:
        assert answer["version"] == 1
        assert abs(sum(answer["probabilities"]) - 1) < 1e-4
    # ... an FP32 service started on the same cache serves model.onnx again, from the same folder, and rewriting
    # the folder's marker does not switch an INT8 process that is about to load its file to FP32
    from serving.runtime.registry import load_model, served_model_file

    int8_file = served_model_file(project_id=project.pk, version_pk=version.pk)
    settings.LABELLOOP_SERVING_PRECISION = "fp32"
    fp32_file = served_model_file(project_id=project.pk, version_pk=version.pk)
    assert fp32_file.name == "model.onnx"
    assert fp32_file.parent == int8_file.parent
    assert served_file(fp32_file.parent) == fp32_file
    assert load_model(onnx_file=int8_file, version_pk=version.pk, number=1).onnx_file == int8_file.name
    # ... and the drift reference is embedded under the precision served: an FP32 cache is not read for INT8
    from labeling.models import LabelSource, ResolvedLabel
    from serving.services import drift_reference

    for i, item in enumerate(items):
        ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT).classes.add(classes[i % 3])
    fp32_rows = drift_reference.reference_embeddings(project_id=project.pk, version_pk=version.pk, version_number=1)
    assert drift_reference.reference_cached(version_pk=version.pk)[1] == "model.onnx"
    settings.LABELLOOP_SERVING_PRECISION = "int8"
    int8_rows = drift_reference.reference_embeddings(project_id=project.pk, version_pk=version.pk, version_number=1)
    assert int8_rows.shape == fp32_rows.shape
    assert not np.array_equal(int8_rows, fp32_rows)  # the INT8 graph's own embeddings
    assert drift_reference.reference_cached(version_pk=version.pk)[1] == int8_files_for_this_cpu()[0]


def test_an_export_zip_without_the_model_files_is_no_export_not_a_crash(model_project, api_key, predict, tmp_path):
    # Given an active version whose only "export" is a zip of something else (a damaged or foreign file)
    import io
    import zipfile

    from django.utils import timezone

    from labeling.models import Job, JobKind, JobStatus
    from labeling.services.exports import export_storage
    from tests.exports.models import make_model_version

    project, classes, items = model_project
    version = make_model_version(project=project, classes=classes, items=items, flip_average=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("x/notes.txt", "not a model")
    key = export_storage().save(f"{project.slug}/foreign.zip", io.BytesIO(buffer.getvalue()))
    Job.objects.create(
        project=project, kind=JobKind.EXPORT_MODEL, status=JobStatus.SUCCEEDED, finished_at=timezone.now(),
        params={"version_id": version.pk}, result={"files": [key]},
    )  # fmt: skip
    _, token = api_key(project)

    # When a client asks for a prediction
    status, body = predict(project.slug, token, images=[items[0].file.open("rb").read()])

    # Then the service answers 409 with what to do, as for a version without an export
    assert status == 409, body
    assert "export" in str(body).lower()


def test_a_multi_label_model_answers_with_the_classes_it_predicts(model_project, api_key, predict, tmp_path):
    # Given a multi-label project whose active v1 is exported
    from labeling.models import Project, TaskType
    from tests.exports.models import make_model_version
    from tests.serving.conftest import export_version

    project, classes, items = model_project
    Project.objects.filter(pk=project.pk).update(task_type=TaskType.MULTI)
    project.refresh_from_db()
    make_model_version(project=project, classes=classes, items=items, number=1, active=True)
    export_version(project, 1, tmp_path / "exports")
    _, token = api_key(project)

    # When a client sends six images
    status, body = predict(project.slug, token, files=[(f"{i}.png", item.file.read()) for i, item in enumerate(items)])
    assert status == 200, body

    # Then each answer's probabilities are independent sigmoids, and "labels" names every class at 0.5 or more, most
    # probable first: the model's prediction, not only its top class
    for answer in body["predictions"]:
        probs = dict(zip(body["classes"], answer["probabilities"], strict=True))
        clear = {c for c, p in probs.items() if abs(p - 0.5) > 1e-5}  # the answer rounds to 6 places
        expected = sorted((c for c in clear if probs[c] >= 0.5), key=lambda c: -probs[c])
        assert [c for c in answer["labels"] if c in clear] == expected
    assert any(abs(sum(a["probabilities"]) - 1) > 0.01 for a in body["predictions"])  # not softmax rows
    # ... and the log's confidence is that of its least sure class decision (the one a doubtful label lowers), as
    # the queue's strategies measure it, so "lowest confidence" finds the images with a label in doubt
    assert predict.log.flush() == len(items)
    logged = {row.uid.hex: row for row in PredictionLog.objects.filter(project=project)}
    for answer in body["predictions"]:
        log = logged[answer["id"].replace("-", "")]
        # on the 0..1 scale the low-confidence threshold reads: 0 with a class at 0.5 (max(p, 1 - p) never fell
        # below 0.5, so no multi-label prediction ever counted as unsure)
        assert log.confidence == pytest.approx(min(abs(2 * p - 1) for p in answer["probabilities"]), abs=1e-6)
        assert log.margin == pytest.approx(min(abs(2 * p - 1) for p in answer["probabilities"]), abs=1e-6)
        # ... and the log keeps the classes it answered with, which monitoring counts and filters by
        assert sorted(log.predicted_labels.values_list("path", flat=True)) == sorted(answer["labels"])
    # ... so an image with a class in doubt (p between 0.25 and 0.75) counts below the default threshold, 0.5
    doubtful = [a for a in body["predictions"] if any(0.25 < p < 0.75 for p in a["probabilities"])]
    assert doubtful, "the test model should leave some class in doubt"
    for answer in doubtful:
        assert logged[answer["id"].replace("-", "")].confidence < DEFAULT_LOW_CONFIDENCE_THRESHOLD
    given = sum(len(a["labels"]) for a in body["predictions"])
    assert PredictedLabel.objects.filter(log__project=project).count() == given


def test_a_single_label_answer_has_no_label_set(served_project, api_key, predict):
    project, _, items, _ = served_project
    _, token = api_key(project)
    status, body = predict(project.slug, token, files=[("0.png", items[0].file.read())])
    assert status == 200
    assert "labels" not in body["predictions"][0]

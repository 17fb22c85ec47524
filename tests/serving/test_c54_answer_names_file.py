"""Each answer of the prediction service names the export's ONNX file that answered and its precision: an INT8
service (LABELLOOP_SERVING_PRECISION=int8) whose export measured its INT8 files outside tolerance serves FP32's
model.onnx, and before this only a log line said so, naming the version by its database id."""

from __future__ import annotations

import logging

import pytest

from serving.selectors.models import model_export_zip_of
from tests.serving.conftest import export_json_edit
from training.ml.export_files import int8_files_for_this_cpu

pytestmark = pytest.mark.django_db


def _measured_outside(project, version, formats: set[str]) -> None:
    def edit(manifest: dict) -> None:
        for row in manifest["measured"]["formats"]:
            row["within_tolerance"] = row["format"] not in formats

    export_json_edit(model_export_zip_of(project_id=project.pk, version_pk=version.pk), "manifest.json", edit)


def test_an_int8_service_on_an_export_whose_int8_files_are_out_of_tolerance_says_model_onnx_fp32(
    served_project, api_key, predict, settings, caplog
):
    # Given an INT8 service and an export whose own measurement put both INT8 files outside tolerance
    settings.LABELLOOP_SERVING_PRECISION = "int8"
    project, _, items, version = served_project
    _measured_outside(project, version, {"int8", "int8_vnni"})
    _, token = api_key(project)

    # When a client sends two images
    with caplog.at_level(logging.WARNING, logger="serving.runtime.registry"):
        status, answer = predict(project.slug, token, images=[items[0].file.read(), items[1].file.open("rb").read()])

    # Then the answer, and each prediction beside its version, says FP32's model.onnx answered
    assert status == 200, answer
    assert (answer["version"], answer["model_file"], answer["precision"]) == (1, "model.onnx", "fp32")
    for prediction in answer["predictions"]:
        assert (prediction["version"], prediction["model_file"], prediction["precision"]) == (1, "model.onnx", "fp32")
        assert {"id", "name", "probabilities", "top_k"} <= set(prediction)
    # And the service's log names the version as pages do (v1) and the project
    warnings = [r.getMessage() for r in caplog.records if "outside the export's own tolerance" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"v1 of project {project.slug}: not serving ")


def test_an_int8_service_whose_int8_file_is_served_names_that_file(served_project, api_key, predict, settings):
    # Given an INT8 service and an export whose INT8 files are within tolerance
    settings.LABELLOOP_SERVING_PRECISION = "int8"
    project, _, items, version = served_project
    _measured_outside(project, version, set())
    _, token = api_key(project)

    # When a client sends an image, the answer names the INT8 file this CPU runs
    status, answer = predict(project.slug, token, images=[items[0].file.read()])
    assert status == 200, answer
    int8_file = int8_files_for_this_cpu()[0]
    assert (answer["model_file"], answer["precision"]) == (int8_file, "int8")
    assert (answer["predictions"][0]["model_file"], answer["predictions"][0]["precision"]) == (int8_file, "int8")


def test_an_fp32_service_says_model_onnx_fp32(served_project, api_key, predict):
    project, _, items, _ = served_project
    _, token = api_key(project)
    status, answer = predict(project.slug, token, images=[items[0].file.read()])
    assert status == 200, answer
    assert (answer["predictions"][0]["model_file"], answer["predictions"][0]["precision"]) == ("model.onnx", "fp32")

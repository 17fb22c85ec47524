"""An INT8 service never serves a file that its own export measured outside tolerance: an INT8 file whose top class
agreed with FP32 on 88 % of the images (98 % promised) was served as the model, with "OUTSIDE tolerance" in the
export's own table."""

from __future__ import annotations

import pytest

from serving.runtime.registry import served_model_file
from serving.selectors.models import model_export_zip_of
from tests.serving.conftest import export_json_edit
from training.ml.export_files import ONNX_FILES, int8_files_for_this_cpu

pytestmark = pytest.mark.django_db


def _mark_outside(key: str, formats: set[str]) -> None:
    """Rewrite the export zip's manifest so that `formats` read as measured outside their tolerance."""

    def outside(manifest: dict) -> None:
        for row in manifest["measured"]["formats"]:
            row["within_tolerance"] = row["format"] not in formats

    export_json_edit(key, "manifest.json", outside)


def test_an_int8_file_outside_its_tolerance_is_not_served(served_project, settings):
    # Given an INT8 service and an export whose manifest measured both INT8 files outside tolerance
    settings.LABELLOOP_SERVING_PRECISION = "int8"
    project, _, _, version = served_project
    key = model_export_zip_of(project_id=project.pk, version_pk=version.pk)
    _mark_outside(key, {"int8", "int8_vnni"})

    # When the service loads the version, it serves FP32's file
    served = served_model_file(project_id=project.pk, version_pk=version.pk)
    assert served.name == ONNX_FILES["fp32"]


def test_an_int8_file_within_its_tolerance_is_served(served_project, settings):
    settings.LABELLOOP_SERVING_PRECISION = "int8"
    project, _, _, version = served_project
    _mark_outside(model_export_zip_of(project_id=project.pk, version_pk=version.pk), set())
    assert served_model_file(project_id=project.pk, version_pk=version.pk).name == int8_files_for_this_cpu()[0]

"""A model export's per-format accuracy carries its n and a 95 % interval (Wilson), 3 decimals at most: on the exports
page, in the job's result (API), in the model card and in manage.py export_model's output. At 24 holdout images FP32
0.792 and INT8 0.833 differ by one image; without the interval the INT8 file read 4 points better."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.exports import export_storage
from stats.proportions import wilson_interval
from tests.factories import api_client, page_client
from training.models import ModelVersion
from training.services import export_formats
from training.services import exports as model_exports

pytestmark = pytest.mark.django_db

FP32_LOW, FP32_HIGH = wilson_interval(19, 24)  # 19 of 24 right: 0.792
INT8_LOW, INT8_HIGH = wilson_interval(20, 24)  # 20 of 24: 0.833


def _row(fmt: str, label: str, file: str, accuracy: float) -> dict:
    return {"format": fmt, "label": label, "file": file, "accuracy": accuracy, "macro_f1": 0.78123,
            "top1_agreement": 0.95833, "top1_agreement_decided": 1.0, "max_prob_diff": 0.01, "size_bytes": 1000,
            "ms_per_image": 1.0, "img_per_s": 100.0, "speedup_vs_fp32": 1.0, "tolerance": "t",
            "within_tolerance": True}  # fmt: skip


def _measured() -> dict:
    """A result's `measured` as exports stored it before intervals (the demo's v2: 24 labeled holdout images)."""
    return {"population": "holdout", "population_note": "the labeled holdout", "images": 24, "labeled": True,
            "labeled_images": 24, "agreement": "top-1", "int8_method": "static", "cpu_vnni": False,
            "calibration_images": 10,
            "formats": [_row("fp32", "FP32 ONNX", "model.onnx", 19 / 24),
                        _row("int8", "INT8 ONNX", "model.int8.onnx", 20 / 24)]}  # fmt: skip


@pytest.fixture
def version(project_factory, label_class_factory):
    project = project_factory(slug="digits")
    classes = [label_class_factory(project=project, name=n) for n in ("a", "b")]
    return ModelVersion.objects.create(
        project=project, number=2, artifact_path="x", architecture="arch", class_ids=[c.pk for c in classes],
        metrics={"accuracy": 0.79, "n": 24}, label_count=40, dataset_hash="d" * 64, active=True,
    )  # fmt: skip


def test_the_exports_page_shows_each_accuracy_with_n_and_interval(version, member_of):
    project = version.project
    Job.objects.create(project=project, kind=JobKind.EXPORT_MODEL, status=JobStatus.SUCCEEDED,
                       finished_at=timezone.now(), params={"version": 2, "version_id": version.pk},
                       result={"version": 2, "files": [], "bytes": 1, "measured": _measured()})  # fmt: skip
    client = page_client(member_of(project, Role.ML_ENGINEER))

    html = client.get(reverse("training:model_exports", args=[project.slug])).content.decode()

    assert f"0.792 [{FP32_LOW:.3f}, {FP32_HIGH:.3f}], n = 24" in html
    assert f"0.833 [{INT8_LOW:.3f}, {INT8_HIGH:.3f}], n = 24" in html
    assert "0.7917" not in html
    assert "0.8333" not in html
    assert "95 % interval" in html
    assert "Within tolerance" in html  # the column stays


def test_a_new_export_stores_n_and_interval_in_the_job_result_and_the_card(version, member_of, monkeypatch, tmp_path):
    from training.ml import export_onnx

    monkeypatch.setattr(export_formats, "calibration_images", lambda *, version: [])
    monkeypatch.setattr(
        export_formats, "evaluation_set", lambda *, version, exclude: ("holdout", ["p"] * 24, [[0]] * 24)
    )
    monkeypatch.setattr(export_formats, "preprocess", lambda paths, pre: [0] * len(paths))
    monkeypatch.setattr(export_onnx, "write_compressed", lambda folder, calibration: "static")
    rows = _measured()["formats"]
    monkeypatch.setattr(export_onnx, "compare_formats", lambda *a, **k: [dict(r) for r in rows])
    monkeypatch.setattr(export_formats, "FILES", {"fp32": "model.onnx", "int8": "model.int8.onnx"})
    report = export_formats.formats_build(version=version, folder=tmp_path, pre={}, multi_label=False,
                                          progress=lambda step, message: None)  # fmt: skip

    def build(*, version, progress=None):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("digits-v2/README.md", "\n".join(export_formats.formats_card(report)))
        key = export_storage().save("digits/model-digits-v2-1.zip", ContentFile(buffer.getvalue()))
        return {"version": 2, "architecture": "arch", "classes": 2, "onnx_max_abs_diff": 1e-6, "bytes": 1,
                "files": [key], "measured": report}  # fmt: skip

    monkeypatch.setattr(model_exports, "model_export_build", build)
    user = member_of(version.project, Role.ML_ENGINEER)
    job = model_exports.model_export_start(project=version.project, user=user, number=2)
    model_exports.model_export_run(job_id=job.pk)

    answer = api_client(user).get(reverse("api-job", args=["digits", job.pk])).json()
    fp32, int8 = answer["result"]["measured"]["formats"]
    assert (fp32["accuracy_n"], int8["accuracy_n"]) == (24, 24)
    assert fp32["accuracy_low"] == pytest.approx(FP32_LOW)
    assert fp32["accuracy_high"] == pytest.approx(FP32_HIGH)
    assert int8["accuracy_low"] == pytest.approx(INT8_LOW)
    assert int8["accuracy_high"] == pytest.approx(INT8_HIGH)
    card = "\n".join(export_formats.formats_card(report))
    assert f"| 0.792 [{FP32_LOW:.3f}, {FP32_HIGH:.3f}], n = 24 | 0.781 |" in card
    assert "accuracy [95 % interval], n" in card


def test_export_model_prints_each_accuracy_with_n_and_interval(version, monkeypatch, tmp_path):
    def build(*, version, progress=None):
        key = export_storage().save("digits/model-digits-v2-2.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18))
        return {"version": 2, "architecture": "arch", "classes": 2, "onnx_max_abs_diff": 1e-6, "bytes": 22,
                "files": [key], "measured": _measured()}  # fmt: skip

    monkeypatch.setattr(model_exports, "model_export_build", build)
    out = io.StringIO()
    call_command("export_model", "digits", "--version", "2", "--out", str(tmp_path / "v2.zip"), verbosity=0,
                 stdout=out, stderr=io.StringIO())  # fmt: skip

    text = out.getvalue()
    assert f"accuracy 0.792 [{FP32_LOW:.3f}, {FP32_HIGH:.3f}], n = 24" in text
    assert f"accuracy 0.833 [{INT8_LOW:.3f}, {INT8_HIGH:.3f}], n = 24" in text

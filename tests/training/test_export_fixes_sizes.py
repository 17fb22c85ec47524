"""A model export's file sizes read the same on the exports page, in the model card and from manage.py export_model
(one formatter, decimal megabytes): the page wrote 13,557,343 bytes as "12.9 MB" (2^20-byte MB) while the card and
the command wrote "13.56 MB"."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Item, Job, JobKind, JobStatus, Role, Split
from tests.exports.models import make_model_version
from tests.training.helpers import resolve
from training.services.export_formats import formats_card, size_text

pytestmark = pytest.mark.django_db

MODEL_ONNX_BYTES = 13_557_343


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (MODEL_ONNX_BYTES, "13.56 MB"),
        (6_800_000, "6.80 MB"),
        (1_234_567_890, "1.23 GB"),
        (2_500, "2.50 kB"),
        (999, "999 bytes"),
        (None, ""),
    ],
)
def test_size_text_writes_decimal_units(size, text):
    assert size_text(size) == text


def measured_report() -> dict:
    row = {
        "format": "fp32", "file": "model.onnx", "label": "FP32 ONNX", "size_bytes": MODEL_ONNX_BYTES,
        "accuracy": 0.9, "macro_f1": 0.9, "top1_agreement": 1.0, "top1_agreement_decided": 1.0, "decided_images": 4,
        "max_prob_diff": 0.0, "ms_per_image": 1.5, "img_per_s": 900.0, "speedup_vs_fp32": 1.0, "size_ratio": 1.0,
        "embedding_dim": 16, "tolerance": "reference", "within_tolerance": True,
    }  # fmt: skip
    return {
        "population": "holdout", "population_note": "labeled holdout", "images": 4, "labeled": True,
        "labeled_images": 4, "agreement": "top-1", "int8_method": "static QOperator", "cpu_vnni": None,
        "calibration_images": 4, "formats": [row],
    }  # fmt: skip


def test_the_exports_page_and_the_card_write_a_stored_size_alike(project_factory, member_of, client):
    # Given a finished model export whose model.onnx has 13,557,343 bytes, in a 40,123,456-byte zip
    project = project_factory(slug="digits", name="Digits")
    measured = measured_report()
    job = Job.objects.create(
        project=project, kind=JobKind.EXPORT_MODEL, status=JobStatus.SUCCEEDED,
        result={"version": 1, "files": ["m.zip"], "bytes": 40_123_456, "measured": measured},
    )  # fmt: skip
    client.force_login(member_of(project, Role.ML_ENGINEER))

    # When the engineer opens the exports page (and the row htmx swaps in)
    page = client.get(reverse("training:model_exports", args=[project.slug])).content.decode()
    row = client.get(reverse("training:model_export_job_row", args=[project.slug, job.pk])).content.decode()

    # Then the size cell says what the model card says, and the download its size the same way
    for html in (page, row):
        assert "<td>13.56 MB</td>" in html
        assert "Download 40.12 MB" in html
        assert "12.9" not in html
    assert "| 13.56 MB |" in "\n".join(formats_card(measured))


@pytest.fixture
def exported_project(project_factory, item_factory, label_class_factory):
    project = project_factory(slug="sizes", name="Sizes")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["cat", "dog", "bird"])]
    items = [item_factory(project=project) for _ in range(6)]
    for i, item in enumerate(items):
        resolve(item, classes[i % 3])
    Item.objects.filter(pk__in=[item.pk for item in items[:3]]).update(split=Split.HOLDOUT)
    Item.objects.filter(pk__in=[item.pk for item in items[3:]]).update(split=Split.TRAIN)
    make_model_version(project=project, classes=classes, items=items)
    return project


def test_a_real_exports_sizes_read_the_same_on_the_page_in_the_card_and_from_the_command(
    exported_project, member_of, client, tmp_path
):
    # Given a model exported through manage.py export_model
    out = io.StringIO()
    call_command("export_model", exported_project.slug, "--out", str(tmp_path / "m.zip"), verbosity=0, stdout=out)
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        card = zf.read(next(n for n in zf.namelist() if n.endswith("README.md"))).decode()
        manifest = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith("manifest.json"))))
    fp32 = next(row for row in manifest["measured"]["formats"] if row["format"] == "fp32")
    written = size_text(fp32["size_bytes"])

    # When the engineer reads the command's output, the card and the exports page
    client.force_login(member_of(exported_project, Role.ML_ENGINEER))
    page = client.get(reverse("training:model_exports", args=[exported_project.slug])).content.decode()
    page_row = re.search(r'<tr data-format="fp32">.*?</tr>', page, re.S).group(0)

    # Then all three write model.onnx's size the same way
    assert re.search(rf"FP32 ONNX .*  {re.escape(written)}  ", out.getvalue())
    card_row = next(line for line in card.splitlines() if line.startswith("| `model.onnx` (FP32 ONNX) |"))
    assert f"| {written} |" in card_row
    assert f"<td>{written}</td>" in page_row

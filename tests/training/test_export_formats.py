"""FP32 / FP16 / INT8 ONNX and TorchScript exports: each file runs with its runtime alone (onnxruntime; torch without
timm or Labelloop), reproduces the platform's predictions within the tolerance the export states, carries the
embedding output, and is measured on the holdout."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Item, Job, JobKind, JobStatus, ResolvedLabel, Role, Split
from labeling.services.exports import export_job_file
from tests.exports.models import make_model_version, platform_probabilities
from tests.training.helpers import resolve
from training.ml.export_files import DECIDED_MARGIN
from training.services import exports
from training.services.export_formats import EXPORT_STEPS

pytestmark = pytest.mark.django_db

# numpy + Pillow, then one runtime: what a consumer of the export has. Preprocessing is the model card's recipe.
PREPROCESS = r"""
import json, sys
from pathlib import Path
import numpy as np
from PIL import Image

folder, images = Path(sys.argv[1]), json.loads(sys.argv[2])
pre = json.loads((folder / "config.json").read_text())["preprocessing"]
size = pre["image_size"]

def load(path):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    short = int(size / pre["crop_pct"])
    new = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    img = img.resize(new, Image.Resampling.BICUBIC)
    left, top = int(round((new[0] - size) / 2)), int(round((new[1] - size) / 2))
    x = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32).transpose(2, 0, 1) / 255
    mean, std = (np.asarray(pre[k], dtype=np.float32)[:, None, None] for k in ("mean", "std"))
    return (x - mean) / std

batch = np.stack([load(p) for p in images]).astype(np.float32)

def softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).tolist()
"""

ONNX_ONLY = (
    PREPROCESS
    + r"""
import onnxruntime as ort
out = {}
for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx", "model.int8.vnni.onnx"):
    session = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
    logits, embedding = session.run(None, {"input": batch})
    out[name] = {
        "outputs": [o.name for o in session.get_outputs()],
        "input_type": session.get_inputs()[0].type,
        "probs": softmax(logits),
        "embedding_shape": list(embedding.shape),
    }
out["torch_loaded"] = "torch" in sys.modules
print(json.dumps(out))
"""
)

# torch alone: timm and the project's packages cannot be imported at all in this process.
TORCH_ONLY = (
    r"""
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"timm", "training", "labeling", "config", "serving"}:
            raise ImportError(f"{name} is not available to a consumer of the export")

sys.meta_path.insert(0, Blocked())
"""
    + PREPROCESS
    + r"""
import torch
module = torch.jit.load(str(folder / "model.torchscript.pt"))
with torch.inference_mode():
    outputs = module(torch.from_numpy(batch))
print(json.dumps({"outputs": len(outputs), "probs": softmax(outputs[0].numpy()),
                  "embedding_shape": list(outputs[1].shape), "timm_loaded": "timm" in sys.modules}))
"""
)


@pytest.fixture
def holdout_project(project_factory, item_factory, label_class_factory):
    """Three classes, eight labeled items (four in the holdout), a version with the platform's predictions."""
    project = project_factory(slug="formats", name="Formats")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["cat", "dog", "bird"])]
    items = [item_factory(project=project) for _ in range(8)]
    for i, item in enumerate(items):
        resolve(item, classes[i % 3])
    Item.objects.filter(pk__in=[item.pk for item in items[:4]]).update(split=Split.HOLDOUT)
    Item.objects.filter(pk__in=[item.pk for item in items[4:]]).update(split=Split.TRAIN)
    version = make_model_version(project=project, classes=classes, items=items, flip_average=True)
    # Decisive by construction: sharpened until the platform's top class clears the export's near-tie margin on at
    # least half the items. Which images the factories draw decides how decisive one sharpening makes a random model
    # (3 or 4 of 8 once another test drew two images first), and the agreement test needs half.
    sharpen(version, items, classes)
    for _ in range(3):
        if decided_count(version) >= len(items) // 2:
            break
        sharpen(version, items, classes, factor=2.0)
    return project, classes, items, version


def decided_count(version) -> int:
    margins = [sorted(p.probabilities)[-1] - sorted(p.probabilities)[-2] for p in version.predictions.all()]
    return sum(margin >= DECIDED_MARGIN for margin in margins)


def decided_among(version, items) -> int:
    """How many of `items` the version's FP32 checkpoint decides (top two probabilities DECIDED_MARGIN apart), by the
    platform's code path; unlike `decided_count`, also for items with no stored prediction."""
    checkpoint = Path(settings.LABELLOOP_DATA_ROOT) / version.artifact_path
    ordered = [sorted(probs) for probs in platform_probabilities(checkpoint, items)]
    return sum(probs[-1] - probs[-2] >= DECIDED_MARGIN for probs in ordered)


def sharpen(version, items, classes, factor: float = 100.0) -> None:
    """Scale the random classifier so that its probabilities are not a three-way tie, and re-score the items with
    the platform's code path (a near-uniform model would make top-1 agreement meaningless)."""
    from safetensors.torch import load_file, save_file

    checkpoint = Path(settings.LABELLOOP_DATA_ROOT) / version.artifact_path
    state = load_file(str(checkpoint / "model.safetensors"))
    state["classifier.weight"] = state["classifier.weight"] * factor
    save_file(state, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    for item, probs in zip(items, platform_probabilities(checkpoint, items), strict=True):
        best = probs.index(max(probs))
        version.predictions.filter(item=item).update(
            probabilities=probs, predicted_class=classes[best], confidence=probs[best], uncertainty=1 - probs[best]
        )


def unzip(path: Path, target: Path) -> Path:
    with zipfile.ZipFile(path) as zf:
        zf.extractall(target)
        return target / zf.namelist()[0].split("/", 1)[0]


def test_each_onnx_format_reproduces_the_platform_with_onnxruntime_alone_within_its_stated_tolerance(
    holdout_project, tmp_path
):
    project, classes, items, version = holdout_project
    steps = []
    job = Job.objects.create(project=project, kind=JobKind.EXPORT_MODEL, params={"version_id": version.pk})

    result = exports.model_export_run(job_id=job.pk, progress=lambda done, total: steps.append((done, total)))

    # The progress bar counts every step, in order, and ends full.
    assert [done for done, _ in steps] == list(range(1, EXPORT_STEPS + 1))
    assert {total for _, total in steps} == {EXPORT_STEPS}
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.done == job.total == EXPORT_STEPS
    handle, _ = export_job_file(job=job)
    with handle, (tmp_path / "model.zip").open("wb") as out:
        out.write(handle.read())
    folder = unzip(tmp_path / "model.zip", tmp_path / "x")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == {**manifest, "version": 1, "dataset_hash": version.dataset_hash}
    assert manifest["measured"] == result["measured"]

    images = json.dumps([item.file.path for item in items])
    run = subprocess.run(
        [sys.executable, "-c", ONNX_ONLY, str(folder), images],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["torch_loaded"] is False
    script = subprocess.run(
        [sys.executable, "-c", TORCH_ONLY, str(folder), images],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert script.returncode == 0, script.stderr
    traced = json.loads(script.stdout)
    assert traced["timm_loaded"] is False
    assert traced["outputs"] == 2  # (logits, embedding), like the ONNX files
    platform = [p.probabilities for p in sorted(version.predictions.all(), key=lambda p: items.index(p.item))]
    top = [row.index(max(row)) for row in platform]
    margin = manifest["decided_margin"]
    decided = [i for i, row in enumerate(platform) if sorted(row)[-1] - sorted(row)[-2] >= margin]
    assert len(decided) >= len(items) // 2  # the fixture's model is decisive enough for agreement to mean something
    files = {
        "fp32": "model.onnx",
        "fp16": "model.fp16.onnx",
        "int8": "model.int8.onnx",
        "int8_vnni": "model.int8.vnni.onnx",
    }
    for name in files.values():
        # The first output keeps its name and meaning; the embedding comes second, one row per image.
        assert got[name]["outputs"] == ["logits", "embedding"]
        assert got[name]["input_type"] == "tensor(float)"  # FP16 and INT8 are still fed float32
    results = {**{fmt: got[name] for fmt, name in files.items()}, "torchscript": traced}
    for fmt, this in results.items():
        assert this["embedding_shape"][0] == len(items)
        assert this["embedding_shape"][1] > len(classes)
        probs = this["probs"]
        diff = max(abs(a - b) for ra, rb in zip(probs, platform, strict=True) for a, b in zip(ra, rb, strict=True))
        tolerance = manifest["tolerances"][fmt]
        assert diff <= tolerance["max_prob_diff"], (fmt, diff)
        if decided:  # where the platform is not at a near-tie, the top class agrees as promised
            agreement = sum(probs[i].index(max(probs[i])) == top[i] for i in decided) / len(decided)
            if fmt.startswith("int8"):
                # On this random toy model one flip moves agreement by 1/len(decided), and whether a CPU's int8
                # kernels flip one varies by machine; INT8's promise is checked on real data by the slow pipeline
                # test and bench/compression.py. Here: a broken INT8 graph (chance is 1/3) still fails.
                assert agreement >= 0.6, (fmt, agreement)
            else:
                assert agreement >= tolerance.get("top1_agreement_decided", 1.0), (fmt, agreement)
    # TorchScript promises what FP32 does: it is the same weights and operations.
    assert manifest["tolerances"]["torchscript"] == manifest["tolerances"]["fp32"]
    assert manifest["torchscript"]["loader"] == "torch.jit.load"
    assert manifest["files"]["model.torchscript.pt"]["bytes"] == (folder / "model.torchscript.pt").stat().st_size


def test_the_export_measures_each_format_on_the_holdout_and_reports_it_in_the_card(holdout_project, tmp_path):
    project, _, items, version = holdout_project
    call_command("export_model", project.slug, "--out", str(tmp_path / "m.zip"), verbosity=0)
    folder = unzip(tmp_path / "m.zip", tmp_path / "x")
    measured = json.loads((folder / "manifest.json").read_text())["measured"]
    assert measured["population"] == "holdout"
    assert measured["images"] == 4
    assert measured["calibration_images"] == 4  # the labeled train items, not the holdout
    rows = {row["format"]: row for row in measured["formats"]}
    assert list(rows) == ["fp32", "fp16", "int8", "int8_vnni", "torchscript"]
    # FP32's accuracy is the platform's own on the holdout labels.
    holdout = [(p, i) for i, p in enumerate(sorted(version.predictions.all(), key=lambda p: items.index(p.item)))][:4]
    expected = sum(p.probabilities.index(max(p.probabilities)) == i % 3 for p, i in holdout) / 4
    assert rows["fp32"]["accuracy"] == pytest.approx(expected)
    assert rows["fp32"]["max_prob_diff"] == 0
    assert rows["fp32"]["speedup_vs_fp32"] == 1
    assert rows["int8"]["size_bytes"] < rows["fp16"]["size_bytes"] < rows["fp32"]["size_bytes"]
    assert rows["int8"]["size_bytes"] == (folder / "model.int8.onnx").stat().st_size
    assert rows["int8_vnni"]["size_bytes"] == (folder / "model.int8.vnni.onnx").stat().st_size
    assert rows["int8_vnni"]["size_bytes"] < rows["fp16"]["size_bytes"]
    # FP32 and FP16 keep their promises on any model; INT8's verdict follows its stated rule from its own figures
    # (on this random 3-class toy model with 4 holdout images one flip is 25 points of agreement, and whether the
    # int8 kernels of a given CPU flip one differs by machine: INT8's quality is measured on real data by the slow
    # pipeline test and bench/compression.py)
    assert rows["fp32"]["within_tolerance"] is True
    assert rows["fp16"]["within_tolerance"] is True
    assert rows["torchscript"]["within_tolerance"] is True
    assert rows["torchscript"]["accuracy"] == rows["fp32"]["accuracy"]
    assert rows["torchscript"]["top1_agreement"] == 1
    assert rows["torchscript"]["size_bytes"] == (folder / "model.torchscript.pt").stat().st_size
    for int8 in (rows["int8"], rows["int8_vnni"]):
        rule_ok = int8["top1_agreement_decided"] >= 0.9 and int8["max_prob_diff"] <= 0.5
        assert int8["within_tolerance"] is rule_ok
    for row in rows.values():
        assert row["ms_per_image"] > 0
        assert row["img_per_s"] > 0
        assert 0 <= row["macro_f1"] <= 1
    assert measured["int8_method"].startswith("static QOperator")
    card = (folder / "README.md").read_text()
    assert "## Export formats" in card
    assert "labeled holdout" in card
    assert "`model.int8.onnx` (INT8 ONNX) | " in card
    assert "`model.int8.vnni.onnx` (INT8 ONNX, VNNI) | " in card
    # ... which file suits which CPU, and what the measuring CPU was
    assert "`model.int8.onnx` has 7-bit weights and runs right on any x86 CPU" in card
    assert measured["cpu_vnni"] in (True, False, None)
    assert "The exporting worker's CPU " in card or "is unknown" in card
    assert "`embedding`" in card
    assert "`model.torchscript.pt` (TorchScript) | " in card
    assert "torch.jit.load('model.torchscript.pt')(batch)" in card


def test_a_small_labeled_holdout_is_joined_by_unlabeled_images_for_agreement_but_not_for_accuracy(
    holdout_project, item_factory, tmp_path
):
    # Given 4 labeled holdout items (a new project's first export has about 5) and 6 unlabeled items
    project, classes, items, version = holdout_project
    unlabeled = [item_factory(project=project) for _ in range(6)]
    Item.objects.filter(pk__in=[item.pk for item in unlabeled[:2]]).update(split=Split.HOLDOUT)
    # FP32 must decide more than the 4 labeled images for the count below to show the unlabeled ones joined; the
    # fixture's sharpening ensures half of its own 8 items, not of these 10, so sharpen on these until 6 are decided
    for _ in range(4):
        if decided_among(version, items[:4] + unlabeled) >= 6:
            break
        sharpen(version, items, classes, factor=2.0)

    call_command("export_model", project.slug, "--out", str(tmp_path / "m.zip"), verbosity=0)

    # Then every format is compared with FP32 on all 10 images, and scored against labels on the 4 labeled ones
    folder = unzip(tmp_path / "m.zip", tmp_path / "x")
    measured = json.loads((folder / "manifest.json").read_text())["measured"]
    assert (measured["population"], measured["images"], measured["labeled_images"]) == ("holdout", 10, 4)
    rows = {row["format"]: row for row in measured["formats"]}
    holdout = sorted(version.predictions.filter(item__in=items[:4]), key=lambda p: items.index(p.item))
    expected = sum(p.probabilities.index(max(p.probabilities)) == i % 3 for i, p in enumerate(holdout)) / 4
    assert rows["fp32"]["accuracy"] == pytest.approx(expected)
    assert rows["fp16"]["decided_images"] > 4  # images FP32 decides, among the 10: more than the labeled 4
    # And the card and the manifest say which figure rests on how many images
    card = (folder / "README.md").read_text()
    assert "Measured when exported, on 10 images. Accuracy and macro-F1 on 4 of them, the labeled holdout" in card
    assert "on all 10, 6 of them unlabeled (none an INT8 calibration image)" in card


def test_a_holdout_with_as_many_labels_as_the_measure_takes_gets_no_unlabeled_image(
    holdout_project, item_factory, monkeypatch
):
    from training.services import export_formats

    project, _, _, version = holdout_project
    item_factory(project=project)  # unlabeled
    monkeypatch.setattr(export_formats, "EVALUATION_LIMIT", 4)  # the 4 labeled holdout items fill it

    population, paths, labels = export_formats.evaluation_set(version=version, exclude=set())

    assert (population, len(paths), len(labels)) == ("holdout", 4, 4)


def test_the_exports_page_shows_a_table_per_export_and_names_train_items_without_a_holdout(
    holdout_project, member_of, client, django_capture_on_commit_callbacks
):
    project, *_ = holdout_project
    Item.objects.filter(project=project).update(split=Split.TRAIN)  # no holdout any more
    client.force_login(member_of(project, Role.ML_ENGINEER))
    page = reverse("training:model_exports", args=[project.slug])
    promises = client.get(page).content.decode()
    assert "max probability difference ≤ 0.02" in promises  # the FP16 promise
    assert "<code>model.torchscript.pt</code>" in promises  # every format's promise is stated before exporting
    assert "<code>model.int8.vnni.onnx</code>" in promises

    with django_capture_on_commit_callbacks(execute=True):  # the task runs eagerly in tests
        response = client.post(reverse("training:model_export_start", args=[project.slug, 1]))
    assert response.status_code == 302

    job = Job.objects.get(project=project, kind=JobKind.EXPORT_MODEL)
    assert job.status == JobStatus.SUCCEEDED, job.message
    html = client.get(page).content.decode()
    assert f'id="export-formats-{job.pk}"' in html
    for fmt in ("fp32", "fp16", "int8", "int8_vnni", "torchscript"):
        assert f'data-format="{fmt}"' in html
    assert "measured on 8 images: labeled TRAIN items" in html
    assert "not unbiased" in html
    # ... and the job's one-line summary keeps to plain figures: no raw dump of the measurements beside the table
    assert "&#x27;formats&#x27;" not in html
    assert "'formats'" not in html
    assert f"<caption>v{job.result['version']}, measured on" in html  # the table names the version, once
    assert job.result["measured"]["population"] == "train"
    assert job.result["measured"]["images"] == 8
    # ... and the row the page swaps in when the job ends carries the measured table too (no reload needed)
    row = client.get(reverse("training:model_export_job_row", args=[project.slug, job.pk])).content.decode()
    assert f'id="export-formats-{job.pk}"' in row
    assert 'data-format="int8_vnni"' in row
    assert "VNNI" in row.split(f'id="export-formats-{job.pk}"', 1)[1]


def test_a_running_export_row_asks_for_the_row_with_the_measurements(
    holdout_project, project_factory, member_of, client
):
    project, *_ = holdout_project
    job = Job.objects.create(project=project, kind=JobKind.EXPORT_MODEL, status=JobStatus.RUNNING)
    dataset_job = Job.objects.create(project=project, kind=JobKind.EXPORT_DATASET, status=JobStatus.SUCCEEDED)
    client.force_login(member_of(project, Role.ML_ENGINEER))

    page = client.get(reverse("training:model_exports", args=[project.slug])).content.decode()

    row_url = reverse("training:model_export_job_row", args=[project.slug, job.pk])
    assert f'hx-get="{row_url}"' in page
    assert client.get(row_url).status_code == 200
    # ... a batch inference job's row too
    inference = Job.objects.create(project=project, kind=JobKind.INFERENCE, status=JobStatus.SUCCEEDED)
    assert client.get(reverse("training:model_export_job_row", args=[project.slug, inference.pk])).status_code == 200
    # Another kind of job, or another project's, is no row of this page
    assert client.get(reverse("training:model_export_job_row", args=[project.slug, dataset_job.pk])).status_code == 404
    assert client.get(reverse("training:model_export_job_row", args=[project.slug, 10**9])).status_code == 404
    elsewhere = Job.objects.create(project=project_factory(), kind=JobKind.EXPORT_MODEL, status=JobStatus.SUCCEEDED)
    assert client.get(reverse("training:model_export_job_row", args=[project.slug, elsewhere.pk])).status_code == 404


def test_a_calibration_count_that_is_no_multiple_of_the_batch_still_gets_static_int8(
    holdout_project, item_factory, tmp_path
):
    # Given 14 labeled train items (the calibration reads batches of up to 8: a short last batch used to fail the
    # percentile calibrator and leave a dynamic INT8 model that kept 2 of 5 top-1 predictions in the demo)
    project, classes, _, _ = holdout_project
    for i in range(10):
        item = item_factory(project=project)
        resolve(item, classes[i % 3])
        Item.objects.filter(pk=item.pk).update(split=Split.TRAIN)

    call_command("export_model", project.slug, "--out", str(tmp_path / "m.zip"), verbosity=0)

    measured = json.loads((unzip(tmp_path / "m.zip", tmp_path / "x") / "manifest.json").read_text())["measured"]
    assert measured["calibration_images"] == 14
    assert measured["int8_method"].startswith("static QOperator"), measured["int8_method"]
    assert "calibration on 14 images" in measured["int8_method"]


def test_without_labeled_train_items_int8_is_calibrated_on_unlabeled_ones(holdout_project, tmp_path):
    # Given a project whose train items are all unlabeled (the holdout keeps its labels)
    project, _, items, _ = holdout_project
    ResolvedLabel.objects.filter(item__in=items[4:]).delete()

    call_command("export_model", project.slug, "--out", str(tmp_path / "m.zip"), verbosity=0)

    # Then INT8 is still calibrated statically, on those 4 images, and measured on the holdout
    measured = json.loads((unzip(tmp_path / "m.zip", tmp_path / "x") / "manifest.json").read_text())["measured"]
    assert measured["calibration_images"] == 4
    assert measured["int8_method"].startswith("static QOperator"), measured["int8_method"]
    assert measured["population"] == "holdout"
    assert measured["images"] == 4  # the unlabeled train items calibrated INT8: they are not measured on


def test_without_any_train_item_int8_is_quantized_dynamically_and_says_so(holdout_project, tmp_path):
    project, *_ = holdout_project
    Item.objects.filter(project=project).update(split=Split.HOLDOUT)  # nothing left to calibrate on
    call_command("export_model", project.slug, "--out", str(tmp_path / "m.zip"), verbosity=0)
    folder = unzip(tmp_path / "m.zip", tmp_path / "x")
    measured = json.loads((folder / "manifest.json").read_text())["measured"]
    assert measured["int8_method"] == "dynamic (no calibration images)"
    assert measured["calibration_images"] == 0
    assert measured["images"] == 8
    assert "INT8: dynamic (no calibration images)." in (folder / "README.md").read_text()

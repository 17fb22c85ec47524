"""What an operator met running the management commands: an --out that cannot be written fails before any work (not
after minutes of export), a trailing "/" means a folder for both exports, a replaced file is named, an unreadable
weights file or unknown architecture gets a clean refusal, an import names the classes its labels made and counts
the labels it refused, and train prints its holdout figures with n and interval and lists the modes users type.

The model exports here build a small stand-in zip (training.services.exports.model_export_build is replaced): the
command's own steps (the --out check, the job, the copy) run for real, in a second; tests/training/test_export_model.py
covers the real build.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from labeling.management.commands.export_dataset import Command as ExportDatasetCommand
from labeling.models import Job, JobStatus, ResolvedLabel, Role
from labeling.services.annotations import annotation_create
from labeling.services.exports import export_storage
from tests.factories import model_export_stored, png_bytes
from training import services as training_services
from training.models import BackboneWeights, ModelVersion, RunStatus, TrainingRun
from training.services import exports as model_exports

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeled(project_factory, item_factory, label_class_factory, member_of):
    """A project with two classes, six labeled items (none reviewed) and a model version v1."""
    project = project_factory(slug="gaps", name="Gaps")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["cat", "dog"])]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for i in range(6):
        annotation_create(item=item_factory(project=project), user=annotator, class_ids=[classes[i % 2].pk])
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="test_efficientnet",
        class_ids=[c.pk for c in classes], metrics={"accuracy": 0.5, "n": 2}, label_count=6, dataset_hash="d" * 64,
        active=True,
    )  # fmt: skip
    return project


@pytest.fixture
def quick_model_build(monkeypatch):
    """The model export builds a small real zip at once instead of ONNX and TorchScript files (module docstring).
    Returns a list that `on_build` callables can be appended to: each runs inside the build (the export's minutes)."""
    during: list = []

    def build(*, version, progress=None):
        for step in during:
            step()
        slug = version.project.slug
        return model_export_stored(version, f"{slug}/model-{slug}-v{version.number}-20250101-000000.zip")

    monkeypatch.setattr(model_exports, "model_export_build", build)
    return during


def export(command: str, project, out: str, *extra: str, **kwargs) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    args = ("--format", "csv") if command == "export_dataset" else ("--version", "1")
    call_command(command, project.slug, *args, "--out", out, *extra, verbosity=0, stdout=stdout, stderr=stderr,
                 **kwargs)  # fmt: skip
    return stdout.getvalue(), stderr.getvalue()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


BAD_OUT = {
    # --out as typed -> what the refusal says
    "a folder that cannot be made": ("/proc/nope/", "cannot make the folder /proc/nope"),
    "a file in a folder that takes none": ("/proc/x.zip", "cannot write a file in /proc"),
    "a parent that is a file": ("{tmp}/x.zip/sub.zip", "x.zip is a file, not a folder"),
    "a folder (trailing /) that is a file": ("{tmp}/x.zip/", "ends in a separator (a folder) but"),
}


@pytest.mark.parametrize("command", ["export_model", "export_dataset"])
@pytest.mark.parametrize("case", list(BAD_OUT))
def test_an_out_that_cannot_be_written_is_refused_before_any_work(labeled, tmp_path, command, case, quick_model_build):
    # Given a file x.zip in the folder, and an --out that cannot take the export
    (tmp_path / "x.zip").write_bytes(b"not yours to touch")
    started: list[str] = []
    quick_model_build.append(lambda: started.append("built"))
    raw, reason = BAD_OUT[case]

    # When the operator exports there
    with pytest.raises(CommandError) as refused:
        export(command, labeled, raw.format(tmp=tmp_path))

    # Then a clean refusal names --out and why, no job was started, and nothing was written or left behind
    assert str(refused.value).startswith("--out ")
    assert reason in str(refused.value)
    assert not Job.objects.exists()
    assert not started
    assert files_under(tmp_path) == ["x.zip"]
    assert (tmp_path / "x.zip").read_bytes() == b"not yours to touch"


@pytest.mark.parametrize("command", ["export_model", "export_dataset"])
def test_a_trailing_slash_makes_the_folder_and_the_zip_goes_inside(labeled, tmp_path, command, quick_model_build):
    # When the export goes to a folder that does not exist yet, named with a trailing slash
    out, _ = export(command, labeled, f"{tmp_path}/newdir/")

    # Then the folder is made and holds the zip under its download name (not a zip file named "newdir")
    assert (tmp_path / "newdir").is_dir()
    (zip_path,) = (tmp_path / "newdir").iterdir()
    assert zip_path.suffix == ".zip"
    assert zipfile.is_zipfile(zip_path)
    assert f"-> {zip_path}" in out
    # and an existing folder named without the slash is used the same way
    export(command, labeled, str(tmp_path / "newdir"))
    assert len(list((tmp_path / "newdir").iterdir())) in (1, 2)  # a second zip, or the same name within a second
    assert all(p.suffix == ".zip" for p in (tmp_path / "newdir").iterdir())


@pytest.mark.parametrize("command", ["export_model", "export_dataset"])
def test_an_existing_out_file_is_replaced_and_the_output_says_so(labeled, tmp_path, command, quick_model_build):
    target = tmp_path / "latest.zip"
    target.write_bytes(b"last week's export")

    out, err = export(command, labeled, str(target))

    assert f"--out {target} exists: it will be replaced when the export finishes." in err
    assert f"-> {target} (replaced the file that was there)" in out
    assert zipfile.is_zipfile(target)
    assert files_under(tmp_path) == ["latest.zip"]  # no temporary file left beside it
    # a new file is not called a replacement
    out, _ = export(command, labeled, str(tmp_path / "fresh.zip"))
    assert "replaced" not in out


@pytest.mark.parametrize("command", ["export_model", "export_dataset"])
def test_a_copy_that_fails_at_the_end_is_a_clean_error_and_the_job_does_not_claim_success(
    labeled, tmp_path, command, quick_model_build, monkeypatch
):
    # Given an export to a new folder that someone replaces with a file while the export runs
    blocker = tmp_path / "late"

    def block() -> None:
        blocker.write_bytes(b"in the way")

    if command == "export_model":
        quick_model_build.append(block)
    else:
        from labeling.management.commands import export_dataset

        real_run = export_dataset.dataset_export_run

        def run_then_block(**kwargs):
            result = real_run(**kwargs)
            block()
            return result

        monkeypatch.setattr(export_dataset, "dataset_export_run", run_then_block)

    # When the export finishes and its zip is copied to --out
    with pytest.raises(CommandError) as failed:
        export(command, labeled, f"{blocker}/")

    # Then the command fails cleanly, naming where it could not write, and the job it ran says it failed
    assert f"Could not write {blocker}/" in str(failed.value)
    assert "nothing was written to --out" in str(failed.value)
    job = Job.objects.get()
    assert job.status == JobStatus.FAILED
    assert job.message.startswith("Copy to --out failed: Could not write")
    assert "files" not in job.result
    assert not any(export_storage().listdir(labeled.slug)[1])  # its stored zip, which nothing would expire, is gone
    assert blocker.read_bytes() == b"in the way"


def test_export_dataset_help_gives_the_default_format():
    text = ExportDatasetCommand().create_parser("manage.py", "export_dataset").format_help()
    assert "(default: imagefolder)" in " ".join(text.split())


def test_an_export_that_matches_nothing_is_refused_and_writes_nothing(labeled, project_factory, tmp_path):
    out = tmp_path / "reviewed.zip"

    with pytest.raises(CommandError) as refused:
        export("export_dataset", labeled, str(out), "--only-reviewed")

    assert str(refused.value) == (
        "Nothing to export from gaps: none of its 6 labeled items matches --only-reviewed. Nothing was written."
    )
    assert not out.exists()
    assert not Job.objects.exists()
    with pytest.raises(CommandError, match="it has no labeled items yet"):
        export("export_dataset", project_factory(), str(out))


# --------------------------------------------------------------------------------------------------------------
# weights_register
# --------------------------------------------------------------------------------------------------------------


def test_a_file_that_is_no_weights_at_all_is_refused_with_its_name_and_what_was_expected(tmp_path):
    text = tmp_path / "x.txt"
    text.write_text("these are not weights\n")

    with pytest.raises(CommandError) as refused:
        call_command("weights_register", "--arch", "tf_efficientnet_lite0", "--file", str(text), verbosity=0)

    message = str(refused.value)
    assert message.startswith("Nothing registered: ")
    assert str(text) in message or "x.txt" in message
    assert "safetensors" in message
    assert "state dict" in message
    assert not BackboneWeights.objects.exists()


def test_an_unknown_architecture_is_refused_before_the_file_is_hashed(tmp_path, monkeypatch):
    from training.ml import models

    hashed: list[str] = []
    monkeypatch.setattr(models, "read_hashed", lambda path, progress=None: hashed.append(str(path)))
    weights = tmp_path / "big.safetensors"
    weights.write_bytes(b"\0" * 1024)

    with pytest.raises(CommandError) as refused:
        call_command("weights_register", "--arch", "tf_efficientnet_lite9", "--file", str(weights), verbosity=0)

    assert str(refused.value).startswith("Nothing registered: unknown timm architecture 'tf_efficientnet_lite9'")
    assert "did you mean" in str(refused.value)
    assert not hashed
    assert not BackboneWeights.objects.exists()


def test_a_folder_given_as_the_weights_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match=r"is a folder; expected a \.safetensors file"):
        call_command("weights_register", "--arch", "tf_efficientnet_lite0", "--file", str(tmp_path), verbosity=0)
    assert not BackboneWeights.objects.exists()


# --------------------------------------------------------------------------------------------------------------
# import_images
# --------------------------------------------------------------------------------------------------------------


def import_folder(project, folder: Path, *extra: str) -> str:
    out = io.StringIO()
    call_command("import_images", project.slug, str(folder), *extra, verbosity=0, stdout=out)
    return out.getvalue()


def test_the_import_prints_the_classes_its_labels_made_near_misses_first(project, label_class_factory, tmp_path):
    label_class_factory(project=project, name="dog")
    images = tmp_path / "images"
    images.mkdir()
    for n, name in enumerate(["a.png", "b.png", "c.png", "d.png"]):
        (images / name).write_bytes(png_bytes(n))
    labels = tmp_path / "labels.csv"
    labels.write_text("a.png,zebra\nb.png,dgo\nc.png,dgo\nd.png,dog\n")

    out = import_folder(project, images, "--csv", str(labels))

    assert "2 new classes made from the labels:" in out
    typo, zebra = out.index("  dgo (2 files; close to dog: a typo?)"), out.index("  zebra (1 file)")
    assert typo < zebra
    assert "4 imported, 0 duplicates, 0 rejected, 4 labeled" in out


def test_the_import_of_a_zip_says_which_folder_became_which_class(project, tmp_path):
    # Given a downloaded data set's zip: one top folder holding a folder per class
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for n, path in enumerate(["PetImages/Cat/1.png", "PetImages/Cat/2.png", "PetImages/Dog/3.png"]):
            z.writestr(path, png_bytes(n))

    # When the command imports it with folders as classes
    out = import_folder(project, archive, "--labels-from-folders")

    # Then it says, as the import page does, that the top folder is no class and which folder made which class
    assert "PetImages, the top folder of archive.zip, is not a class: its sub-folders are." in out
    assert "2 folders read as classes:\n  PetImages/Cat -> Cat (2 files)\n  PetImages/Dog -> Dog (1 file)\n" in out
    assert "3 imported, 0 duplicates, 0 rejected, 3 labeled" in out


def test_the_import_summary_counts_the_label_rows_it_refused(project, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for n, name in enumerate(["a.png", "b.png", "c.png"]):
        (images / name).write_bytes(png_bytes(n))
    labels = tmp_path / "labels.csv"
    labels.write_text("a.png,cat\nb.png,animals//cat\nc.png,a//b\n")

    out = import_folder(project, images, "--csv", str(labels))

    assert "labels CSV row 2 (b.png): label 'animals//cat'" in out  # each refused row is named above the summary
    assert "labels CSV row 3 (c.png): label 'a//b'" in out
    assert "3 imported, 0 duplicates, 0 rejected, 2 labels not applied, 1 labeled" in out


def test_csv_and_folder_labels_together_the_csv_wins_for_its_files_and_the_command_says_so(project, tmp_path):
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "one.png").write_bytes(png_bytes(1))
    (tmp_path / "images" / "cat" / "two.png").write_bytes(png_bytes(2))
    labels = tmp_path / "labels.csv"
    labels.write_text("one.png,dog\n")

    out = import_folder(project, tmp_path / "images", "--labels-from-folders", "--csv", str(labels))

    assert "a file the CSV names takes the CSV's label; every other file takes its folder's" in out
    assert ResolvedLabel.objects.get(item__original_name__endswith="one.png").classes.get().path == "dog"
    assert ResolvedLabel.objects.get(item__original_name__endswith="two.png").classes.get().path == "cat"


# --------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------


def test_train_lists_the_modes_users_type_and_refuses_a_timeout_under_a_second(project):
    with pytest.raises(CommandError) as refused:
        call_command("train", project.slug, "--mode", "bogus", verbosity=0)
    assert "choose from 'head', 'finetune'" in str(refused.value)
    assert "RunMode" not in str(refused.value)
    for timeout in ("-5", "0", "0.5", "nan"):
        with pytest.raises(CommandError, match="--timeout: must be at least 1 second"):
            call_command("train", project.slug, "--wait", "--timeout", timeout, verbosity=0)
    assert not TrainingRun.objects.exists()


def test_train_prints_the_holdout_figures_with_their_n_and_interval(project, monkeypatch):
    metrics = {
        "accuracy": 0.7778, "macro_f1": 0.675, "ece": 0.346, "n": 27,
        "intervals": {
            "level": 0.95,
            "accuracy": {"low": 0.5919, "high": 0.8939, "method": "wilson"},
            "macro_f1": {"low": 0.512, "high": 0.803, "method": "bootstrap"},
            "ece": {"low": 0.231, "high": 0.462, "method": "bootstrap"},
        },
    }  # fmt: skip

    def trained(*, run_id, worker, on_progress):  # a round's outcome, without the round
        TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED, device="cpu")
        ModelVersion.objects.create(project=project, run_id=run_id, number=1, artifact_path="x",
                                    architecture="test_efficientnet", metrics=metrics, label_count=40)  # fmt: skip

    monkeypatch.setattr(training_services, "training_run_execute", trained)
    out = io.StringIO()

    call_command("train", project.slug, "--in-process", verbosity=0, stdout=out)

    assert (
        "model v1, 40 labels, holdout of 27 items: accuracy 0.778 [0.592, 0.894], macro-F1 0.675 [0.512, 0.803], "
        "ECE 0.346 [0.231, 0.462] (95 % intervals); under 200 items they are wide" in out.getvalue()
    )


def test_a_version_without_recorded_intervals_says_so_rather_than_printing_none(project, monkeypatch):
    def trained(*, run_id, worker, on_progress):
        TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED, device="cpu")
        ModelVersion.objects.create(project=project, run_id=run_id, number=1, artifact_path="x",
                                    architecture="test_efficientnet", metrics={"accuracy": 0.8125, "n": 16},
                                    label_count=40)  # fmt: skip

    monkeypatch.setattr(training_services, "training_run_execute", trained)
    out = io.StringIO()

    call_command("train", project.slug, "--in-process", verbosity=0, stdout=out)

    assert "holdout of 16 items: accuracy 0.812 (no interval); under 200 items" in out.getvalue()

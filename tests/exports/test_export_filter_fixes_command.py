"""manage.py export_dataset: --classes refuses a blank entry as the API does (",,," exported everything), and --out
takes a path ending in "/" or naming an existing folder as a folder that gets the zip under its download name (a
missing "dir/" made a FILE named "dir", overwritten by every later export)."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from labeling.models import Job, Role

pytestmark = pytest.mark.django_db


def export(project, out: str) -> str:
    stdout = io.StringIO()
    call_command("export_dataset", project.slug, "--format", "csv", "--out", out, verbosity=0, stdout=stdout)
    return stdout.getvalue()


def test_a_missing_folder_ending_in_a_slash_is_created_and_gets_the_zip(labeled_project, tmp_path):
    project, *_ = labeled_project
    folder = tmp_path / "exports" / "digits"
    said = export(project, f"{folder}/")
    assert folder.is_dir()
    (written,) = folder.iterdir()
    assert written.suffix == ".zip"
    assert zipfile.is_zipfile(written)
    assert said.strip().endswith(f"-> {written.resolve()}")
    export(project, f"{folder}/")
    assert len(list(folder.iterdir())) == 2  # the second export does not overwrite the first


def test_an_existing_folder_without_a_slash_gets_the_zip(labeled_project, tmp_path):
    project, *_ = labeled_project
    said = export(project, str(tmp_path))
    (written,) = tmp_path.iterdir()
    assert zipfile.is_zipfile(written)
    assert str(written.resolve()) in said


def test_a_file_path_is_still_a_file(labeled_project, tmp_path):
    project, *_ = labeled_project
    target = tmp_path / "new" / "mine.zip"
    said = export(project, str(target))
    assert zipfile.is_zipfile(target)
    assert str(target.resolve()) in said


def test_a_file_given_as_a_folder_is_refused_before_exporting(labeled_project, tmp_path):
    project, *_ = labeled_project
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(CommandError, match="is a file, not a folder"):
        export(project, f"{tmp_path / 'taken'}/")
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize("classes", [",,,", "cat,,dog", " , ", "cat,"])
def test_the_command_refuses_a_blank_class_entry_with_the_apis_message(labeled_project, member_of, tmp_path, classes):
    project, *_ = labeled_project
    client = APIClient()
    client.force_authenticate(member_of(project, Role.ML_ENGINEER, "ml"))
    answer = client.post(f"/api/projects/{project.slug}/exports/dataset/",
                         {"format": "csv", "classes": classes.split(",")}, format="json")  # fmt: skip
    assert answer.status_code == 400
    (message,) = {m for messages in answer.json()["classes"].values() for m in messages}
    before = Job.objects.count()
    with pytest.raises(CommandError) as refused:
        call_command("export_dataset", project.slug, "--format", "csv", "--classes", classes, "--out", str(tmp_path),
                     verbosity=0)  # fmt: skip
    assert str(refused.value).startswith(f"classes: {message}")
    assert Job.objects.count() == before
    assert not list(tmp_path.iterdir())

"""An export imported into a fresh project and exported again keeps its file names: nothing is added per round.

Reported: `12_cat.png` came back as `40_12_cat.png`, one id prefix more each round. Each test goes the way a team
does: `manage.py import_images` of a folder of class folders, `manage.py export_dataset`, the zip imported into a
new project with its labels, exported again.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image

from labeling.models import Item, Job, TaskType

pytestmark = pytest.mark.django_db

# class folder / file name: two "cat.png" (in two classes), a "Cat.PNG" that differs from them only in case, a name
# that looks like an old export's "<id>_" name, and names no other image has.
FILES = ["cat/cat.png", "dog/cat.png", "dog/Cat.PNG", "cat/12_cat.png", "cat/tabby 1.png", "dog/rex.png", "dog/a.png"]


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (seed * 53 % 256, seed * 17 % 256, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def imported_project(project_factory, source: Path, *, multi: bool = False):
    project = project_factory(task_type=TaskType.MULTI if multi else TaskType.SINGLE)
    call_command("import_images", project.slug, str(source), "--labels-from-folders", verbosity=0)
    job = Job.objects.filter(project=project).latest("pk")
    assert (job.result["imported"], job.result["rejected"]) == (len(FILES), 0), job.errors
    return project


def exported_files(project, tmp_path: Path, fmt: str) -> tuple[Path, list[str]]:
    """Run the export command; (the zip, the relative names of its images)."""
    out = tmp_path / f"{project.slug}-{fmt}.zip"
    call_command("export_dataset", project.slug, "--format", fmt, "--out", str(out), verbosity=0)
    with zipfile.ZipFile(out) as zf:
        names = [n for n in zf.namelist() if not n.endswith(("/", ".json", ".jsonl"))]
    return out, sorted(names)


@pytest.mark.parametrize("fmt", ["imagefolder", "hf"])
def test_two_round_trips_give_the_same_file_names_and_they_stay_unique(project_factory, tmp_path, fmt):
    # Given a project imported from class folders, with two images named "cat.png" and one "Cat.PNG"
    source = tmp_path / "source"
    for seed, name in enumerate(FILES):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(png(seed))
    project = imported_project(project_factory, source)

    # When it is exported, the export imported into a fresh project, exported, and that once more
    zip_path, names = exported_files(project, tmp_path, fmt)
    rounds = [names]
    for n in (1, 2):
        project = imported_project(project_factory, zip_path)
        (tmp_path / str(n)).mkdir()
        zip_path, names = exported_files(project, tmp_path / str(n), fmt)
        rounds.append(names)

    # Then every round has the same relative file names
    assert rounds[0] == rounds[1] == rounds[2]
    # and they are unique in the export, case ignored (a zip unpacked on Windows or macOS loses none)
    basenames = [n.rsplit("/", 1)[1] for n in rounds[0]]
    assert len({b.casefold() for b in basenames}) == len(basenames) == len(FILES)
    # The images sharing a name are told apart by their contents; the other names are the images' own.
    tag = {name: hashlib.sha256(png(seed)).hexdigest()[:8] for seed, name in enumerate(FILES)}
    assert set(basenames) == {
        f"cat_{tag['cat/cat.png']}.png",
        f"cat_{tag['dog/cat.png']}.png",
        f"Cat_{tag['dog/Cat.PNG']}.png",
        "12_cat.png",
        "tabby_1.png",
        "rex.png",
        "a.png",
    }
    # The new project shows the names the export gave, no id prefixed to them
    originals = {name.rsplit("/", 1)[1] for name in Item.objects.filter(project=project).values_list(
        "original_name", flat=True)}  # fmt: skip
    assert originals == set(basenames)


# Classes "a" and "A" share a folder on Windows and macOS; "b/c" (the path b, then c) and a root class "b__c" share
# the flattened folder "b__c". A tag of the class id made a new folder each round (`a_18546`, then `a_18551`).
CLASH_FILES = ["a/1.png", "A/1.png", "b/c/1.png", "b__c/1.png", "d/1.png"]


def test_class_folders_that_clash_keep_their_names_round_after_round(project_factory, tmp_path):
    # Given a project with classes a, A, b/c, b__c and d, one image in each, imported from class folders
    source = tmp_path / "source"
    for seed, name in enumerate(CLASH_FILES):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(png(seed))
    project = project_factory(task_type=TaskType.SINGLE)
    call_command("import_images", project.slug, str(source), "--labels-from-folders", verbosity=0)

    # When it is exported, the export imported into a fresh project and exported, twice over
    rounds = []
    for n in range(3):
        (tmp_path / str(n)).mkdir()
        out = tmp_path / str(n) / "export.zip"
        call_command("export_dataset", project.slug, "--format", "imagefolder", "--out", str(out), verbosity=0)
        with zipfile.ZipFile(out) as zf:
            rounds.append(sorted(n for n in zf.namelist() if n != "manifest.json"))
        project = project_factory(task_type=TaskType.SINGLE)
        call_command("import_images", project.slug, str(out), "--labels-from-folders", verbosity=0)
        assert Job.objects.filter(project=project).latest("pk").result["imported"] == len(CLASH_FILES)

    # Then every round has the same folders and files, empty folders included
    assert rounds[0] == rounds[1] == rounds[2]
    # and the clashing classes are told apart by a tag of their exact path, the others keep their names
    tag = {path: hashlib.sha256(path.encode()).hexdigest()[:8] for path in ("a", "A", "b/c", "b__c")}
    folders = {n.split("/")[1] for n in rounds[0]}
    assert folders == {f"a_{tag['a']}", f"A_{tag['A']}", f"b__c_{tag['b/c']}", f"b__c_{tag['b__c']}", "d"}
    # The new project has the classes of the first, by path
    assert sorted(project.classes.values_list("name", flat=True)) == ["A", "a", "b", "b__c", "c", "d"]

"""A labels CSV in a hierarchical project that names a leaf by its bare name ("cat" for animals / mammals / cat): the
one class of that name is labeled, a name several classes carry is refused naming them, and a new class's typo hint
looks at every class, not only its siblings (labeling.services.imports.class_names, new_classes). Folder labels and
flat projects keep their meaning."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Job, JobStatus, LabelClass, ResolvedLabel, Role
from labeling.services.projects import label_classes_from_paths
from tests.factories import page_client, page_import, png_bytes, token_client, upload

pytestmark = pytest.mark.django_db

TAXONOMY = [
    "animals/mammals/cat",
    "animals/mammals/dog",
    "animals/mammals/tiger",
    "animals/mammals/zebra",
    "animals/birds/robin",
    "hat",
    "lamp",
    "vehicles/car",
    "toys/robin",
]


def labels(project) -> dict[str, str]:
    return {
        r.item.original_name: "; ".join(sorted(c.path for c in r.classes.all()))
        for r in ResolvedLabel.objects.filter(project=project)
    }


def roots(project) -> list[str]:
    return sorted(LabelClass.objects.filter(project=project, parent=None).values_list("name", flat=True))


def api_import(project, member_of, capture, files: dict[str, bytes], csv: str | None) -> Job:
    """POST /api/projects/<slug>/imports/ with the images and a labels CSV, as a script sends them."""
    api = token_client(member_of(project, Role.MANAGER))
    data = {"files": [upload(n, d) for n, d in files.items()]}
    if csv is not None:
        data["csv"] = [upload("labels.csv", csv.encode())]
    with capture(execute=True):
        answer = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def test_a_csvs_bare_names_label_the_one_class_of_that_name_and_typos_name_the_class_meant(
    project, member_of, django_capture_on_commit_callbacks
):
    # Given a 3-level taxonomy, and a CSV that names leaves by their bare names, with typos and a new name
    label_classes_from_paths(project=project, paths=TAXONOMY)
    rows = {
        "a.png": "cat",
        "b.png": "dog",
        "c.png": "dgo",
        "d.png": "tiger",
        "e.png": "zebar",
        "f.png": "animals/mammals/horse",
        "g.png": "Lamp",
        "h.png": "hedgehog",
        "i.png": "robin",
        "j.png": "lamp",
    }
    files = {name: png_bytes(n) for n, name in enumerate(rows)}
    csv = "filename,label\n" + "".join(f"{name},{label}\n" for name, label in rows.items())

    # When they are imported through the API
    job = api_import(project, member_of, django_capture_on_commit_callbacks, files, csv)

    # Then a bare name that one class carries labels it (before: new root classes cat, dog and tiger)
    got = labels(project)
    assert got["a.png"] == "animals / mammals / cat"
    assert got["b.png"] == "animals / mammals / dog"
    assert got["d.png"] == "animals / mammals / tiger"
    assert got["j.png"] == "lamp"  # a root class of the name is that class
    assert got["f.png"] == "animals / mammals / horse"
    # and a name two classes carry is not guessed: the file is imported unlabeled, the row refused naming both
    assert "i.png" not in got
    refused = [e for e in job.errors if e["name"] == "i.png"]
    assert refused == [
        {
            "name": "i.png",
            "reason": "label 'robin' not applied: 2 classes are named robin (animals / birds / robin; toys / robin); "
            "give the full path in the CSV",
        }
    ]
    assert job.result["label_errors"] == 1
    assert job.result["rejected_by_reason"] == {"label refused": 1}
    # and no root class was made for a leaf the project has
    assert roots(project) == ["Lamp", "animals", "dgo", "hat", "hedgehog", "lamp", "toys", "vehicles", "zebar"]
    # and each new class is named with the class it is close to, at any level ("dgo" was not compared with dog)
    assert job.result["new_classes"] == [
        {"path": "Lamp", "name": "Lamp", "files": 1, "near": "lamp"},
        {"path": "dgo", "name": "dgo", "files": 1, "near": "animals / mammals / dog"},
        {"path": "zebar", "name": "zebar", "files": 1, "near": "animals / mammals / zebra"},
        {"path": "animals/mammals/horse", "name": "animals / mammals / horse", "files": 1, "near": ""},
        {"path": "hedgehog", "name": "hedgehog", "files": 1, "near": ""},
    ]
    # and the import page says so under the job
    page = page_client(member_of(project, Role.MANAGER))
    text = unescape(re.sub(r"\s+", " ", page.get(reverse("labeling:import", args=[project.slug])).content.decode()))
    assert "dgo (1 file; close to animals / mammals / dog: a typo?)" in text
    assert "zebar (1 file; close to animals / mammals / zebra: a typo?)" in text
    assert "robin (animals / birds / robin; toys / robin)" in text


def test_a_csv_for_images_already_there_uses_the_same_rule(project, member_of, django_capture_on_commit_callbacks):
    # Given a taxonomy and two unlabeled images imported before
    label_classes_from_paths(project=project, paths=TAXONOMY)
    images = {"x.png": png_bytes(1), "y.png": png_bytes(2)}
    api_import(project, member_of, django_capture_on_commit_callbacks, images, None)

    # When a CSV alone labels them, by bare names (one of them two classes carry)
    job = api_import(project, member_of, django_capture_on_commit_callbacks, {}, "x.png,zebra\ny.png,robin\n")

    # Then the one class named labels x.png, y.png stays unlabeled with the reason, and no class is made
    assert labels(project)["x.png"] == "animals / mammals / zebra"
    assert "y.png" not in labels(project)
    assert [e["name"] for e in job.errors if "2 classes are named robin" in e["reason"]] == ["y.png"]
    assert "new_classes" not in job.result
    assert LabelClass.objects.filter(project=project).count() == 14


def test_folders_keep_their_meaning_and_a_root_class_made_beside_a_leaf_of_its_name_says_so(
    project, member_of, django_capture_on_commit_callbacks
):
    # Given the taxonomy, and a dropped folder pets/ holding cat/ and hut/
    label_classes_from_paths(project=project, paths=TAXONOMY)
    page = page_client(member_of(project, Role.MANAGER))
    files = {"pets/cat/1.png": png_bytes(1), "pets/hut/2.png": png_bytes(2)}

    # When it is imported with "Folders are classes"
    job = page_import(page, project, files, django_capture_on_commit_callbacks, labels_from_folders=True,
                      dropped_folder="pets")  # fmt: skip

    # Then every folder is a level, as before: a root class cat is made, and named with the leaf of its name
    # (never "close to hat: a typo?"); hut is close to hat
    assert labels(project) == {"pets/cat/1.png": "cat", "pets/hut/2.png": "hut"}
    assert job.result["new_classes"] == [
        {"path": "cat", "name": "cat", "files": 1, "near": "", "also": ["animals / mammals / cat"]},
        {"path": "hut", "name": "hut", "files": 1, "near": "hat"},
    ]
    text = unescape(re.sub(r"\s+", " ", page.get(reverse("labeling:import", args=[project.slug])).content.decode()))
    assert "cat (1 file; the project also has animals / mammals / cat), hut (1 file; close to hat: a typo?)." in text


def test_a_path_with_a_typo_in_a_parent_is_named_with_the_class_meant(
    project, member_of, django_capture_on_commit_callbacks
):
    label_classes_from_paths(project=project, paths=TAXONOMY)
    job = api_import(
        project, member_of, django_capture_on_commit_callbacks, {"a.png": png_bytes(1)}, "a.png,animals/mamals/cat\n"
    )
    assert job.result["new_classes"] == [
        {"path": "animals/mamals/cat", "name": "animals / mamals / cat", "files": 1, "near": "animals / mammals / cat"}
    ]


def test_a_flat_project_reads_a_csv_as_before(project, member_of, django_capture_on_commit_callbacks):
    # Given a flat project
    label_classes_from_paths(project=project, paths=["cat", "dog"])
    files = {"a.png": png_bytes(1), "b.png": png_bytes(2), "c.png": png_bytes(3)}

    # When a CSV names a class, a typo and a new class
    job = api_import(project, member_of, django_capture_on_commit_callbacks, files, "a.png,cat\nb.png,dgo\nc.png,owl\n")

    # Then as before: the class, and new root classes with the sibling hint
    assert labels(project) == {"a.png": "cat", "b.png": "dgo", "c.png": "owl"}
    assert job.result["new_classes"] == [
        {"path": "dgo", "name": "dgo", "files": 1, "near": "dog"},
        {"path": "owl", "name": "owl", "files": 1, "near": ""},
    ]


def test_manage_py_import_images_csv_uses_the_same_rule(project, tmp_path, capsys):
    # Given the taxonomy and a folder with an image and a CSV naming a leaf by its bare name
    label_classes_from_paths(project=project, paths=TAXONOMY)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png_bytes(1))
    (tmp_path / "imgs" / "b.png").write_bytes(png_bytes(2))
    (tmp_path / "labels.csv").write_text("a.png,tiger\nb.png,zebar\n")

    # When it is imported with the command
    call_command("import_images", project.slug, str(tmp_path / "imgs"), "--csv", str(tmp_path / "labels.csv"))

    # Then tiger labels the leaf, and zebar is named as close to zebra
    assert labels(project) == {"a.png": "animals / mammals / tiger", "b.png": "zebar"}
    assert "zebar (1 file; close to animals / mammals / zebra: a typo?)" in capsys.readouterr().out

"""A labels CSV that names a class the project does not have makes it (a team's CSV may bring its classes), and the
import says so: each new class by name, with how many files it labels and, where its name is close to a class that
was there before, that class, so that a typo ("dgo") is seen at once rather than found later in the class list."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import LabelClass, ResolvedLabel
from labeling.services.projects import label_classes_from_paths
from tests.factories import png_bytes
from tests.labeling.test_import_hostile import manager_client, upload  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_the_import_names_the_classes_its_labels_made_and_the_one_a_typo_meant(
    project,
    manager_client,  # noqa: F811
    upload,  # noqa: F811
):
    # Given a project with a taxonomy, and 40 images whose CSV names two classes it lacks: a typo and a real new one
    label_classes_from_paths(project=project, paths=["animals/mammals/dog", "animals/mammals/cat", "vehicles/land/car"])
    images = {f"img{n:02d}.png": png_bytes(n, (12, 12)) for n in range(40)}
    labels = (
        ["animals/mammals/dog"] * 35
        + ["animals / mammals / dgo"] * 3
        + ["vehicles/land/spaceship", "animals/mammals/bobcat"]
    )
    rows = ["filename,label"] + [f"img{n:02d}.png,{label}" for n, label in enumerate(labels)]
    images["labels.csv"] = ("\n".join(rows) + "\n").encode()

    # When they are uploaded together
    job = upload(manager_client, project, images)

    # Then the classes are made and used, and the job names each new one, once, with its files and near miss
    job.refresh_from_db()
    assert job.result["labeled"] == 40
    # ("bobcat" holds "cat" but is three letters from it: a class of its own, like "spaceship")
    dgo = {
        "path": "animals/mammals/dgo",
        "name": "animals / mammals / dgo",
        "files": 3,
        "near": "animals / mammals / dog",
    }
    assert job.result["new_classes"] == [
        dgo,
        {"path": "animals/mammals/bobcat", "name": "animals / mammals / bobcat", "files": 1, "near": ""},
        {"path": "vehicles/land/spaceship", "name": "vehicles / land / spaceship", "files": 1, "near": ""},
    ]
    assert ResolvedLabel.objects.get(item__original_name="img36.png").classes.get().path == "animals / mammals / dgo"
    # and the import page says it where the job is shown
    page = unescape(
        re.sub(r"\s+", " ", manager_client.get(reverse("labeling:import", args=[project.slug])).content.decode())
    )
    assert "3 new classes made from the labels" in page
    assert (
        "animals / mammals / dgo (3 files; close to animals / mammals / dog: a typo?), animals / mammals / bobcat "
        "(1 file), vehicles / land / spaceship (1 file)." in page
    )

    # And labels attached later for a class made by then are not new again, nor the old ones
    again = upload(
        manager_client, project, {"more.png": png_bytes(99, (12, 12)), "labels.csv": b"more.png,animals/mammals/dgo\n"}
    )
    again.refresh_from_db()
    assert again.result["labeled"] == 1
    assert "new_classes" not in again.result
    assert LabelClass.objects.filter(project=project).count() == 10  # 7 before the imports, dgo, bobcat and spaceship

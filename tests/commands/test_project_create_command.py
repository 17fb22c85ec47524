"""`manage.py project_create`: an operator makes a project from the shell, checked as the pages check it, then imports
into it with `manage.py import_images`."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Item, LabelClass, Membership, Project, ResolvedLabel, Role
from labeling.selectors.classes import class_paths, class_tree
from tests.factories import png_bytes, taxonomy_paths

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("project_create", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_project_with_classes_settings_and_an_owner(user_factory):
    # Given a user who will manage the project
    owner = user_factory(username="maria")

    # When the operator creates a project with 120 classes and settings
    names = ",".join(f"c{n}" for n in range(120))
    out = run("Parts", "--slug", "parts", "--kind", "multi", "--classes", names, "--owner", "maria",
              "--annotations-per-item", "2", "--image-size", "160", "--retrain-every", "10", "--no-flip-average",
              "--al-strategy", "margin", "--holdout-fraction", "0.2", "--instructions", "Tick every part.")  # fmt: skip

    # Then it exists as asked, the owner its manager, and the command says so
    project = Project.objects.get(slug="parts")
    assert "slug parts, 120 classes, manager maria" in out
    assert (project.task_type, project.annotations_per_item, project.image_size) == ("multi", 2, 160)
    assert (project.retrain_every, project.flip_average, project.al_strategy) == (10, False, "margin")
    assert (project.holdout_fraction, project.instructions) == (0.2, "Tick every part.")
    assert Membership.objects.get(project=project).user == owner
    assert Membership.objects.get(project=project).role == Role.MANAGER
    assert list(LabelClass.objects.filter(project=project).order_by("order").values_list("name", flat=True)) == [
        f"c{n}" for n in range(120)
    ]


def test_a_taxonomy_from_a_classes_file(tmp_path, user_factory):
    user_factory(username="maria")
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(taxonomy_paths()) + "\n\n", encoding="utf-8")
    run("Things", "--classes-file", str(classes), "--owner", "maria")
    project = Project.objects.get(slug="things")
    assert set(taxonomy_paths()) <= set(class_paths(class_tree(project=project)).values())
    assert project.classes.count() == 150


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--image-size", "4096"], "image_size: The backbones need at least 32 pixels"),
        (["--annotations-per-item", "0"], "annotations_per_item: Each image needs at least one annotator"),
        (["--min-labels-to-train", "one"], "min_labels_to_train: Enter a whole number."),
        (["--al-strategy", "best"], "al_strategy:"),
        (["--classes", "cat,a//b,,dog"], "classes: Class 2 ('a//b'): empty class name between slashes"),
        (["--backbone-weights", "/etc/passwd"], "backbone_weights: Choose one of the listed weights"),
        (["--owner", "nobody"], "No active user 'nobody'"),
        (["--classes-file", "/no/such/file.txt"], "Cannot read the classes file"),
    ],
)
def test_bad_input_exits_1_naming_the_field_and_creates_nothing(args, says):
    with pytest.raises(CommandError) as refused:
        run("Refused", *args)
    assert says in str(refused.value)
    assert Project.objects.count() == 0
    assert LabelClass.objects.count() == 0


def test_every_refused_field_is_named_at_once():
    with pytest.raises(CommandError) as refused:
        run("Refused", "--image-size", "1", "--gpus", "0", "--classes", "ok,a//b")
    message = str(refused.value)
    assert "image_size:" in message
    assert "gpus:" in message
    assert "classes:" in message


def test_a_taken_slug_is_refused(project_factory):
    project_factory(slug="taken")
    with pytest.raises(CommandError, match="slug: A project with the slug 'taken' exists"):
        run("Mine", "--slug", "taken")
    assert Project.objects.count() == 1


def test_import_images_works_on_a_project_it_made(tmp_path, user_factory):
    # Given a project made by the command, and a zip of class folders with a corrupt file
    user_factory(username="maria")
    run("Pets", "--classes", "cat,dog", "--owner", "maria")
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for n in range(20):
            out.writestr(f"{'cat' if n % 2 else 'dog'}/{n}.png", png_bytes(n))
        out.writestr("cat/broken.png", png_bytes(99)[:50])

    # When the operator imports it with labels from folders
    printed = io.StringIO()
    call_command("import_images", "pets", str(archive), "--labels-from-folders", stdout=printed, stderr=io.StringIO())

    # Then every good image is an item of that project, labeled into the classes the command made
    project = Project.objects.get(slug="pets")
    assert Item.objects.filter(project=project).count() == 20
    assert "20 imported" in printed.getvalue()
    assert "rejected cat/broken.png" in printed.getvalue()
    assert ResolvedLabel.objects.filter(project=project).count() == 20
    assert sorted(project.classes.values_list("name", flat=True)) == ["cat", "dog"]

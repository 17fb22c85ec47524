"""`manage.py project_create`: an operator makes a project from the shell, checked as the pages check it, then imports
into it with `manage.py import_images`."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command

from labeling.management.commands.project_create import Command as ProjectCreateCommand
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
        (["--owner", "nobody"], "No active user 'nobody'"),  # the last --owner given counts
        (["--classes-file", "/no/such/file.txt"], "Cannot read the classes file"),
    ],
)
def test_bad_input_exits_1_naming_the_field_and_creates_nothing(user_factory, args, says):
    user_factory(username="maria")
    with pytest.raises(CommandError) as refused:
        run("Refused", "--owner", "maria", *args)
    assert says in str(refused.value)
    assert Project.objects.count() == 0
    assert LabelClass.objects.count() == 0


def test_every_refused_field_is_named_at_once(user_factory):
    user_factory(username="maria")
    with pytest.raises(CommandError) as refused:
        run("Refused", "--owner", "maria", "--image-size", "1", "--gpus", "0", "--classes", "ok,a//b")
    message = str(refused.value)
    assert "image_size:" in message
    assert "gpus:" in message
    assert "classes:" in message


def test_a_taken_slug_is_refused(project_factory, user_factory):
    project_factory(slug="taken")
    user_factory(username="maria")
    with pytest.raises(CommandError, match="slug: A project with the slug 'taken' exists"):
        run("Mine", "--slug", "taken", "--owner", "maria")
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
    assert "rejected pets.zip:cat/broken.png" in printed.getvalue()
    assert ResolvedLabel.objects.filter(project=project).count() == 20
    assert sorted(project.classes.values_list("name", flat=True)) == ["cat", "dog"]


def test_the_owner_is_required_and_said_to_become_the_manager():
    # Given --help: --owner is not shown as optional, and says what the owner is
    parser = ProjectCreateCommand().create_parser("manage.py", "project_create")
    usage, text = parser.format_usage(), parser.format_help()
    assert "--owner USER" in usage
    assert "[--owner USER]" not in usage
    assert "becomes the project's manager" in " ".join(text.split())

    # When the operator leaves it out, argparse refuses before anything is checked or made
    with pytest.raises(CommandError, match="the following arguments are required: --owner"):
        run("Orphan", "--classes", "x")
    assert Project.objects.count() == 0


def test_a_classes_file_skips_blank_and_comment_lines_but_keeps_hash_names(tmp_path, user_factory):
    # Given a classes file with comments, blank lines and classes whose names start with "#"
    user_factory(username="maria")
    classes = tmp_path / "classes.txt"
    classes.write_text("# birds of the garden\nrobin\n\n  # another comment\n#\n#1\n#hashtag\nwren\n", encoding="utf-8")

    # When a project is made from it
    out = run("Garden", "--classes-file", str(classes), "--owner", "maria")

    # Then the comments are not classes, and "#1" and "#hashtag" are
    project = Project.objects.get(slug="garden")
    assert "4 classes" in out
    assert list(project.classes.order_by("order").values_list("name", flat=True)) == ["robin", "#1", "#hashtag", "wren"]
    # and --help says so
    text = " ".join(ProjectCreateCommand().create_parser("manage.py", "project_create").format_help().split())
    assert 'blank lines and comment lines ("#" then a space' in text
    assert '"#1" is still a class' in text

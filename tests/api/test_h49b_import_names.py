"""POST /api/projects/<slug>/imports/: a `names` entry that leaves its folder is refused by name; nothing is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeling.models import Item, Job, LabelClass, ResolvedLabel, Role
from tests.factories import png_bytes, token_client, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(project, member_of):
    return member_of(project, Role.MANAGER, "boss")


def staged_files(settings) -> list[Path]:
    staging = Path(settings.LABELLOOP_DATA_ROOT) / "staging"
    return [p for p in staging.rglob("*")] if staging.exists() else []


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/a.png", "/abs/a.png", "a/../../b.png", "cat\\..\\..\\b.png", "cat/a\x00.png", "C:/photos/a.png"],
)
def test_a_name_that_leaves_its_folder_is_a_400_naming_it_and_imports_nothing(
    project, manager, hostile, item_factory, settings, django_capture_on_commit_callbacks
):
    # Given a project with one image, and a script's upload whose second name is hostile
    item_factory(project=project)
    files = [upload("1.png", png_bytes(1)), upload("2.png", png_bytes(2)), upload("3.png", png_bytes(3))]
    body = {"files": files, "names": ["cat/1.png", hostile, "dog/3.png"], "labels_from_folders": "true"}

    # When it is posted
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(f"/api/projects/{project.slug}/imports/", body, format="multipart")

    # Then it is refused with the entry's index and name, and nothing changed: no job, no item, no class, no file
    assert answer.status_code == 400, answer.content
    [message] = answer.json()["names"]
    assert message.startswith(f"names[1] {hostile!r} ")
    assert Item.objects.filter(project=project).count() == 1
    assert Job.objects.count() == 0
    assert not LabelClass.objects.filter(project=project).exists()
    assert staged_files(settings) == []


def test_every_hostile_name_is_named_in_one_answer(project, manager, settings):
    files = [upload(f"{n}.png", png_bytes(n)) for n in range(3)]
    body = {"files": files, "names": ["../0.png", "ok/1.png", "/2.png"]}

    answer = token_client(manager).post(f"/api/projects/{project.slug}/imports/", body, format="multipart")

    assert answer.status_code == 400, answer.content
    assert answer.json()["names"] == [
        "names[0] '../0.png' goes up a folder (..).",
        "names[2] '/2.png' is an absolute path: give the path relative to the folder uploaded.",
    ]
    assert Job.objects.count() == 0
    assert staged_files(settings) == []


def test_names_as_the_import_page_sends_them_import_into_their_classes(
    project, manager, django_capture_on_commit_callbacks
):
    # Given folder paths as a browser's webkitRelativePath gives them: spaces, non-Latin letters, dots, nesting
    names = ["chats noirs/1.png", "птицы/воробей/2.png", "動物/猫 1.png", "v1.2/./3.png"]
    files = [upload(name.rsplit("/", 1)[-1], png_bytes(n)) for n, name in enumerate(names)]

    # When a script uploads them with labels from folders
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(
            f"/api/projects/{project.slug}/imports/",
            {"files": files, "names": names, "labels_from_folders": "true"},
            format="multipart",
        )

    # Then each image is in its folder's class, nested folders a hierarchy
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.result["imported"] == 4, job.errors
    labels = {r.item.original_name: r.classes.get() for r in ResolvedLabel.objects.filter(project=project)}
    assert {name: c.name for name, c in labels.items()} == {
        "chats noirs/1.png": "chats noirs",
        "птицы/воробей/2.png": "воробей",
        "動物/猫 1.png": "動物",
        "v1.2/3.png": "v1.2",
    }
    assert labels["птицы/воробей/2.png"].parent.name == "птицы"


def test_an_empty_json_body_is_a_400_saying_what_is_missing_not_a_server_error(project, manager):
    # Given a script that posts the import with a JSON content type and no body (files come as multipart only)
    # When it is posted
    answer = token_client(manager).post(
        f"/api/projects/{project.slug}/imports/", data="", content_type="application/json"
    )

    # Then it is a 400 that says a file is needed (it was a 500: the names check read a form from a plain dict), and
    # nothing was started
    assert answer.status_code == 400, answer.content
    assert "files" in answer.json()
    assert Job.objects.count() == 0

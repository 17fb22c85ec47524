"""Folders as classes: a top folder that every file shares is a class level, except the folder dropped or picked on
the import page and a zip's one top folder that holds only folders of images, unless the project has a root class
of that name (labeling.services.imports.folder_classes); the job says which folder became which class. Also the
sizes the import page and a zip's oversized entry state."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from labeling.models import Job, JobStatus, LabelClass, ResolvedLabel, Role
from labeling.services.projects import label_classes_from_paths
from tests.factories import page_client, page_import, png_bytes, token_client, upload, zip_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(project, member_of) -> APIClient:
    return token_client(member_of(project, Role.MANAGER))


@pytest.fixture
def page(project, member_of) -> Client:
    return page_client(member_of(project, Role.MANAGER))


def api_import(api, project, files: dict[str, bytes], names: list[str] | None, capture) -> Job:
    """POST /imports/ with "folders are classes" as a script sends it; the task runs in process."""
    data = {
        "files": [upload(n.rsplit("/", 1)[-1], d) for n, d in files.items()],
        "labels_from_folders": "true",
    }
    if names is not None:
        data["names"] = names
    with capture(execute=True):
        answer = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def labels(project) -> dict[str, str]:
    return {r.item.original_name: r.classes.get().path for r in ResolvedLabel.objects.filter(project=project)}


def roots(project) -> list[str]:
    return sorted(LabelClass.objects.filter(project=project, parent=None).values_list("name", flat=True))


def test_api_names_keep_a_top_folder_every_file_shares(project, api, django_capture_on_commit_callbacks):
    # Given a fresh project and two files whose names share the top folder animals
    files = {"animals/cat/1.png": png_bytes(1), "animals/dog/2.png": png_bytes(2)}

    # When a script imports them with their names and "folders are classes"
    job = api_import(api, project, files, list(files), django_capture_on_commit_callbacks)

    # Then animals is the parent class, as the README's animals/cat/1.jpg says (before: root classes cat and dog)
    assert labels(project) == {"animals/cat/1.png": "animals / cat", "animals/dog/2.png": "animals / dog"}
    assert roots(project) == ["animals"]
    # and the job says which folder became which class
    assert job.result["folder_classes"] == {
        "folders": [
            {"folder": "animals/cat", "class": "animals / cat", "files": 1, "offered": 1},
            {"folder": "animals/dog", "class": "animals / dog", "files": 1, "offered": 1},
        ],
        "count": 2,
        "top_folders": [],
    }


def test_api_names_add_to_the_existing_taxonomy_not_new_root_classes(project, api, django_capture_on_commit_callbacks):
    # Given a project with the taxonomy animals / alpha / one
    label_classes_from_paths(project=project, paths=["animals/alpha/one"])
    files = {"animals/alpha/one/n1.png": png_bytes(1), "animals/beta/two/n2.png": png_bytes(2)}

    # When a script imports two files under animals/
    job = api_import(api, project, files, list(files), django_capture_on_commit_callbacks)

    # Then they land in animals / alpha / one and a new animals / beta / two (before: new roots alpha and beta)
    assert labels(project) == {
        "animals/alpha/one/n1.png": "animals / alpha / one",
        "animals/beta/two/n2.png": "animals / beta / two",
    }
    assert roots(project) == ["animals"]
    assert [row["name"] for row in job.result["new_classes"]] == ["animals / beta / two"]


@pytest.mark.parametrize(
    ("zip_name", "existing", "expected", "left_out"),
    [
        # the folder plants zipped (Finder, Windows, zip -r), or a downloaded data set's archive.zip holding it
        ("plants.zip", [], {"tree", "bush"}, True),
        ("archive.zip", [], {"tree", "bush"}, True),
        # ... but not when the project has plants as a root class: its images go under it, not beside it
        ("plants.zip", ["plants/moss"], {"plants / tree", "plants / bush"}, False),
        ("archive.zip", ["plants/moss"], {"plants / tree", "plants / bush"}, False),
    ],
)
def test_a_zips_shared_top_folder_is_no_class_unless_the_project_has_it(
    project, api, django_capture_on_commit_callbacks, zip_name, existing, expected, left_out
):
    # Given a zip whose entries all sit in plants/, and maybe a project with a class plants
    if existing:
        label_classes_from_paths(project=project, paths=existing)
    archive = zip_of({"plants/tree/5.png": png_bytes(5), "plants/bush/6.png": png_bytes(6)})

    # When it is imported with "folders are classes"
    job = api_import(api, project, {zip_name: archive}, None, django_capture_on_commit_callbacks)

    # Then the classes are as the rule says, and the job says why plants is or is not a class
    assert set(labels(project).values()) == expected
    [note] = job.result["folder_classes"]["top_folders"]
    assert (note["folder"], note["where"], note["left_out"]) == ("plants", zip_name, left_out)
    assert note["why"].startswith("plants, ")
    assert ("is not a class" in note["why"]) == left_out


def test_a_dropped_folder_gives_the_classes_it_gave_before_and_says_its_name_is_no_class(
    project, page, django_capture_on_commit_callbacks
):
    # Given the browser's paths for the folder emoji dropped on the page (its name before every path)
    files = {"emoji/smileys/grin.png": png_bytes(1), "emoji/smileys/wink.png": png_bytes(2),
             "emoji/animals/cat.png": png_bytes(3)}  # fmt: skip

    # When the page starts the import naming the folder it saw dropped
    page_import(page, project, files, django_capture_on_commit_callbacks, labels_from_folders=True,
                dropped_folder="emoji")  # fmt: skip

    # Then its sub-folders are the classes, as before
    assert labels(project) == {
        "emoji/smileys/grin.png": "smileys",
        "emoji/smileys/wink.png": "smileys",
        "emoji/animals/cat.png": "animals",
    }
    # and the job card says which folder became which class, and why emoji is none
    card = page.get(reverse("labeling:import", args=[project.slug])).content.decode()
    assert "emoji, the folder dropped or picked on the page, is not a class: its sub-folders are." in card
    assert '<tr><td>emoji/smileys</td><td>smileys</td><td class="count">2</td></tr>' in card
    assert '<tr><td>emoji/animals</td><td>animals</td><td class="count">1</td></tr>' in card


def test_a_dropped_folder_named_as_a_class_of_the_project_stays_that_class(
    project, page, django_capture_on_commit_callbacks
):
    # Given a project with animals / alpha / one, and the folder animals dropped on the page
    label_classes_from_paths(project=project, paths=["animals/alpha/one"])
    files = {"animals/alpha/one/n1.png": png_bytes(1), "animals/beta/two/n2.png": png_bytes(2)}

    # When the import starts
    job = page_import(page, project, files, django_capture_on_commit_callbacks, labels_from_folders=True,
                      dropped_folder="animals")  # fmt: skip

    # Then the images join the taxonomy, and the job says why animals was kept
    assert labels(project) == {
        "animals/alpha/one/n1.png": "animals / alpha / one",
        "animals/beta/two/n2.png": "animals / beta / two",
    }
    assert roots(project) == ["animals"]
    assert [n["why"] for n in job.result["folder_classes"]["top_folders"]] == [
        "animals, the folder dropped or picked on the page, is a class: the project has a class animals"
    ]


@pytest.mark.parametrize(
    ("files", "dropped_folder", "expected"),
    [
        # one folder of images, dropped: it is their class
        ({"cat/1.png": 1, "cat/2.png": 2}, "cat", {"cat/1.png": "cat", "cat/2.png": "cat"}),
        # two folders dropped at once: the page names none, each is a class
        ({"cat/1.png": 1, "dog/2.png": 2}, None, {"cat/1.png": "cat", "dog/2.png": "dog"}),
        # a dropped folder with an image beside its sub-folders: kept, so that image keeps a class
        ({"pets/a.png": 1, "pets/cat/1.png": 2}, "pets", {"pets/a.png": "pets", "pets/cat/1.png": "pets / cat"}),
    ],
)
def test_other_folder_drops_give_the_classes_they_gave_before(
    project, page, django_capture_on_commit_callbacks, files, dropped_folder, expected
):
    page_import(page, project, {n: png_bytes(s) for n, s in files.items()}, django_capture_on_commit_callbacks,
                labels_from_folders=True, dropped_folder=dropped_folder)  # fmt: skip
    assert labels(project) == expected


def test_the_import_page_states_its_limits_in_the_binary_units_they_are_set_in(project, page, settings):
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 50 * 1024**2
    settings.LABELLOOP_MAX_ZIP_BYTES = 2 * 1024**3
    text = page.get(reverse("labeling:import", args=[project.slug])).content.decode()
    assert "Up to 50.0 MiB per image, 2.0 GiB per zip." in text  # before: "50.0 MB", "2.0 GB"


def test_an_oversized_zip_entry_is_refused_with_its_size(project, api, settings, django_capture_on_commit_callbacks):
    # Given a 40 KiB limit and a zip holding a 48 KiB bitmap beside a small image
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 40 * 1024
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(noise, "BMP")
    archive = zip_of({"red/big.bmp": noise.getvalue(), "red/small.png": png_bytes(1)})

    # When it is imported
    job = api_import(api, project, {"photos.zip": archive}, None, django_capture_on_commit_callbacks)

    # Then the entry's refusal says how big it is, as a loose file's does (before: "file is over the 40.0 KiB limit")
    assert [(e["name"], e["reason"]) for e in job.errors] == [
        ("photos.zip:red/big.bmp", "file is 48.1 KiB, over the 40.0 KiB limit")
    ]
    assert job.result["imported"] == 1

"""Class names that read alike are one name, and a name must show something (h57 P7).

A class named by zero-width spaces was made by the API and the settings page, and "Café" typed as one "é" (NFC) and
as "e" + a combining acute (NFD, as macOS writes file names) made two classes that read the same everywhere (an
ImageFolder export had to tell their folders apart by a hash). Names are now stored in normal form C, trimmed of
zero-width characters at their ends, compared in that form, and refused when nothing in them shows; an imported file's
name loses the right-to-left override that showed "…\u202etxt.png" as "…gnp.txt".
"""

from __future__ import annotations

import io
import unicodedata

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import Item, Job, JobStatus, LabelClass, Project, ResolvedLabel, Role
from tests.factories import page_client, png_bytes, token_client, upload, zip_of
from tests.labeling.test_project_permissions import NEW_PROJECT, error_of

pytestmark = pytest.mark.django_db

NFC = "Caf\u00e9"
NFD = "Cafe\u0301"
SHOWS_NOTHING = "shows nothing: it holds only spaces and invisible characters"
INVISIBLE = ["\u200b", "\u200b\u200b", " \u2060 \ufeff", "\u3164", "\u200d\u200c"]


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def creator(user_factory, allow_project_creation):
    return allow_project_creation(user_factory(username="creator"))


def names(project) -> list[str]:
    return list(LabelClass.objects.filter(project=project).values_list("name", flat=True))


@pytest.mark.parametrize("invisible", INVISIBLE)
def test_a_class_that_shows_nothing_is_refused_where_a_project_is_made(creator, invisible, tmp_path):
    # Reported: POST /api/projects/ with "classes": ["\u200b"] made a class named by a zero-width space
    api = token_client(creator).post("/api/projects/", {"name": "Cls", "classes": ["cat", invisible]}, format="json")
    page = page_client(creator).post(
        reverse("labeling:project_create"), {**NEW_PROJECT, "classes": f"cat\n{invisible}"}
    )
    listed = tmp_path / "classes.txt"
    listed.write_text(f"cat\n{invisible}\n", encoding="utf-8")
    with pytest.raises(CommandError, match=SHOWS_NOTHING):
        call_command(
            "project_create", "Shell", "--classes-file", str(listed), "--owner", creator.username, stdout=io.StringIO()
        )

    # Then the API, the page and the command each refuse the list, naming the line and why, and make nothing
    assert api.status_code == 400, api.content
    assert api.json()["classes"][0].startswith("Class 2 (")
    assert SHOWS_NOTHING in api.json()["classes"][0]
    assert page.status_code == 200
    assert "Line 2:" in error_of(page)
    assert SHOWS_NOTHING in error_of(page)
    assert Project.objects.count() == 0
    assert LabelClass.objects.count() == 0


@pytest.mark.parametrize("invisible", INVISIBLE)
def test_a_class_that_shows_nothing_is_refused_where_a_class_is_added_or_renamed(project, member_of, invisible):
    # Reported: POST .../classes/create/ with {"name": "\u200b\u200b"} answered 201
    cat = LabelClass.objects.create(project=project, name="cat", hotkey="1")
    manager = member_of(project, Role.MANAGER)
    api = token_client(manager)

    created = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": invisible}, format="json")
    renamed = api.patch(f"/api/projects/{project.slug}/classes/{cat.pk}/", {"name": invisible}, format="json")
    page = page_client(manager).post(
        reverse("labeling:project_settings", args=[project.slug]), {"action": "class", "name": invisible}
    )
    page_rename = page_client(manager).post(
        reverse("labeling:label_class_rename", args=[project.slug, cat.pk]), {"name": invisible}, follow=True
    )

    # Then each answer says the name shows nothing, and the class list is as it was
    assert created.status_code == 400, created.content
    assert SHOWS_NOTHING in created.json()["detail"][0]
    assert renamed.status_code == 400
    assert SHOWS_NOTHING in renamed.json()["name"][0]
    assert SHOWS_NOTHING in error_of(page)
    assert "“cat” was not renamed" in error_of(page_rename)
    assert SHOWS_NOTHING in error_of(page_rename)
    assert names(project) == ["cat"]


def test_cafe_typed_either_way_is_one_class_on_the_api_and_the_settings_page(project, member_of):
    # Reported: "Café" (NFC) and "Cafe\u0301" (NFD) were two classes (hostile, ids 178/179)
    manager = member_of(project, Role.MANAGER)
    api = token_client(manager)

    # When the manager adds it decomposed, then composed, on the API and on the settings page
    first = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": NFD}, format="json")
    again = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": NFC}, format="json")
    page = page_client(manager).post(
        reverse("labeling:project_settings", args=[project.slug]), {"action": "class", "name": f" {NFC}\u200b"}
    )

    # Then the first is stored composed, and the others are refused as the class it already has
    assert first.status_code == 201, first.content
    assert first.json()["name"] == NFC
    assert again.status_code == 400
    assert again.json()["detail"] == [f"A class named {NFC!r} already exists here."]
    assert f"A class named {NFC!r} already exists here." in error_of(page)
    assert names(project) == [NFC]
    # a rename to the other spelling of a sibling's name is refused too
    tea = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": "Tea"}, format="json").json()
    renamed = api.patch(f"/api/projects/{project.slug}/classes/{tea['id']}/", {"name": NFD}, format="json")
    assert renamed.status_code == 400
    assert names(project) == [NFC, "Tea"]


def test_a_class_list_with_both_spellings_makes_one_class(creator):
    answer = token_client(creator).post(
        "/api/projects/", {"name": "Drinks", "classes": [NFD, NFC, f"{NFC}\u200b", f"menu/{NFD}"]}, format="json"
    )
    assert answer.status_code == 201, answer.content
    project = Project.objects.get(slug=answer.json()["slug"])
    assert sorted(names(project)) == sorted([NFC, "menu", NFC])
    assert LabelClass.objects.get(project=project, parent__name="menu").name == NFC


def test_names_that_need_joiners_inside_them_are_kept(project, member_of):
    # A zero-width joiner builds an emoji sequence, and a non-joiner is part of Persian spelling: only a name of
    # nothing else is refused
    api = token_client(member_of(project, Role.MANAGER))
    for name in [
        "\U0001f469\u200d\U0001f52c",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "\u05d7\u05ea\u05d5\u05dc",
    ]:
        answer = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": name}, format="json")
        assert answer.status_code == 201, (name, answer.content)
        assert answer.json()["name"] == name


def test_a_class_stored_decomposed_before_is_the_class_an_import_or_a_new_class_names(project, member_of, capture):
    # Given a class stored as "Cafe\u0301" before names were normalised (no migration changes it)
    old = LabelClass.objects.create(project=project, name=NFD, hotkey="1", order=0)
    manager = member_of(project, Role.MANAGER)
    api = token_client(manager)

    # When the manager adds "Café" (composed), and a labels CSV and a folder label images with it
    created = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": NFC}, format="json")
    data = {
        "files": [upload("menu.zip", zip_of({f"{NFD}/a.png": png_bytes(1), f"{NFC}/b.png": png_bytes(2)}))],
        "labels_from_folders": True,
    }
    with capture(execute=True):
        folders = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")
    csv = f"filename,label\nc.png,{NFC}\n".encode()
    data = {"files": [upload("c.png", png_bytes(3))], "csv": [upload("labels.csv", csv)]}
    with capture(execute=True):
        rows = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")

    # Then the new class is refused as the one there, said to be spelled otherwise, and every image is labeled with it
    assert created.status_code == 400
    assert "already exists here (in other Unicode characters that read the same)" in created.json()["detail"][0]
    for answer in (folders, rows):
        assert answer.status_code == 202, answer.content
        job = Job.objects.get(pk=answer.json()["id"])
        assert job.status == JobStatus.SUCCEEDED, job.message
        assert job.result["imported"] == job.result["labeled"], job.result
    labeled = {r.item.original_name[-5:]: [c.pk for c in r.classes.all()] for r in ResolvedLabel.objects.all()}
    assert labeled == {"a.png": [old.pk], "b.png": [old.pk], "c.png": [old.pk]}
    assert list(LabelClass.objects.filter(project=project)) == [old]


def test_an_imported_file_name_loses_its_right_to_left_override(project, member_of, capture):
    # Reported: longname.zip's "ünï cödé 猫 🐱 \u202etxt.png" was stored as it is and shown as "…gnp.txt"
    spoofed = "\u00fcn\u00ef c\u00f6d\u00e9 \u732b \U0001f431 \u202etxt.png"
    plain = spoofed.replace("\u202e", "")
    label_cat = LabelClass.objects.create(project=project, name="cat", hotkey="1")
    api = token_client(member_of(project, Role.MANAGER))

    # When it is imported in a zip, with a labels CSV that names it as the zip does, and uploaded beside a file whose
    # backslash refuses it
    csv = f"filename,label\n{spoofed},cat\n".encode()
    data = {"files": [upload("longname.zip", zip_of({spoofed: png_bytes(1)}))], "csv": [upload("labels.csv", csv)]}
    with capture(execute=True):
        zipped = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")
    refused = "scan\\\u202egnp.exe"  # a backslash refuses it; the refusal names it without the override
    data = {
        "files": [upload("x", png_bytes(2)), upload("y", png_bytes(3))],
        "names": [f"photo\u2067{spoofed}", refused],
    }
    with capture(execute=True):
        lone = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")

    # Then the images are imported under their names without the direction controls, the CSV's label applied
    for answer in (zipped, lone):
        assert answer.status_code == 202, answer.content
        assert Job.objects.get(pk=answer.json()["id"]).status == JobStatus.SUCCEEDED
    stored = dict(Item.objects.filter(project=project).values_list("original_name", "resolved__classes"))
    assert stored == {plain: label_cat.pk, f"photo{plain}": None}
    assert [e["name"] for e in Job.objects.get(pk=lone.json()["id"]).errors] == ["scan\\gnp.exe"]


def test_a_macs_decomposed_file_name_is_stored_composed_and_a_csv_row_typed_composed_labels_it(
    project, member_of, capture
):
    # Given a zip made on a Mac, whose "Café menu.png" is "Cafe" + a combining accent, and a labels CSV typed on
    # Windows naming it with one "é" (and the reverse for a second file)
    label_cat = LabelClass.objects.create(project=project, name="cat", hotkey="1")
    api = token_client(member_of(project, Role.MANAGER))
    files = {f"{NFD} menu.png": png_bytes(1), f"{NFC} bill.png": png_bytes(2)}
    csv = f"filename,label\n{NFC} menu.png,cat\n{NFD} bill.png,cat\n".encode()
    data = {"files": [upload("menus.zip", zip_of(files))], "csv": [upload("labels.csv", csv)]}

    # When it is imported
    with capture(execute=True):
        answer = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")

    # Then both images are labeled by their rows, and stored under the composed name, which reads the same
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["labeled"] == 2, job.result
    stored = dict(Item.objects.filter(project=project).values_list("original_name", "resolved__classes"))
    assert stored == {f"{NFC} menu.png": label_cat.pk, f"{NFC} bill.png": label_cat.pk}


def test_a_name_that_reads_as_a_siblings_is_refused_or_is_that_class(project, member_of, capture):
    # Reported (h58 P3): "Ca\u200bfé" (a zero-width space inside) and "Café\u200f" (a right-to-left mark after it)
    # were made beside "Café"; (h58b P3) a class renamed "Cros\u200bs" showed as "Cross" but a CSV's "Cross" was
    # refused; (h58b P4) "CAFÉ" was made beside "Café"
    cafe = LabelClass.objects.create(project=project, name=NFC, hotkey="1", order=0)
    api = token_client(member_of(project, Role.MANAGER))
    url = f"/api/projects/{project.slug}/classes/create/"

    answers = {
        name: api.post(url, {"name": name}, format="json")
        for name in ("Ca\u200bf\u00e9", "Ca\u034ff\u00e9", f"{NFC}\u200f", "CAF\u00c9", "caf\u00e9")
    }
    csv = "filename,label\nc.png,Caf\u00ad\u00e9\nd.png,Ca\u034ff\u00e9\n".encode()
    data = {"files": [upload("c.png", png_bytes(3)), upload("d.png", png_bytes(4))], "csv": [upload("l.csv", csv)]}
    with capture(execute=True):
        imported = api.post(f"/api/projects/{project.slug}/imports/", data, format="multipart")

    # Then each new class is refused as the class there, saying how it differs
    said = {name: answer.json()["detail"][0] for name, answer in answers.items() if answer.status_code == 400}
    assert set(said) == set(answers), {n: a.status_code for n, a in answers.items()}
    there = f"A class named {NFC!r} already exists here"
    assert said["Ca\u200bf\u00e9"] == f"{there}."  # the zero-width space is dropped: it is "Café" itself
    assert said[f"{NFC}\u200f"] == f"{there}."  # the mark at its end is trimmed
    assert said["Ca\u034ff\u00e9"] == f"{there} (in other Unicode characters that read the same)."
    assert said["CAF\u00c9"] == said["caf\u00e9"] == f"{there} (the names differ only in upper and lower case)."
    # ... the CSV's "Caf\u00adé" (a soft hyphen) labels with it, and its "Ca\u034ffé" is not applied, naming the class
    # to label with (an import leaves case alone: test_import_case_near)
    job = Job.objects.get(pk=imported.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message
    words = job.message + str(job.errors) + str(job.result)
    assert "reads the same as 'Café' beside it (in other Unicode characters that read the same): label with" in words
    labeled = dict(ResolvedLabel.objects.filter(item__project=project).values_list("item__original_name", "classes"))
    assert labeled == {"c.png": cafe.pk}
    assert list(LabelClass.objects.filter(project=project)) == [cafe]


def test_characters_that_shape_a_name_are_kept_and_those_that_show_nothing_dropped(project, member_of):
    # A Thai name's zero-width space (a line-break hint) is dropped; a Persian non-joiner and an emoji's joiner shape
    # the text and stay; a right-to-left mark at a name's end is trimmed; a renamed "Cros\u200bs" is "Cross"
    api = token_client(member_of(project, Role.MANAGER))
    url = f"/api/projects/{project.slug}/classes/create/"
    thai = "\u0e41\u0e21\u0e27\u200b\u0e1b\u0e48\u0e32"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    made = [api.post(url, {"name": name}, format="json") for name in (thai, persian, "abc\u200f", "Cros")]
    assert [a.status_code for a in made] == [201] * 4, [a.content for a in made]
    renamed = api.patch(
        f"/api/projects/{project.slug}/classes/{made[3].json()['id']}/", {"name": "Cros\u200bs"}, format="json"
    )
    assert renamed.status_code == 200, renamed.content
    assert sorted(names(project)) == sorted([thai.replace("\u200b", ""), persian, "abc", "Cross"])


def test_the_characters_left_out_when_names_are_compared_are_unicodes_format_characters():
    # The written-out set (labeling.selectors.classes._UNSEEN) is every format character (Cf) of the Basic
    # Multilingual Plane, the combining grapheme joiner and the variation selectors, as this Python's tables have them
    from labeling.selectors.classes import _UNSEEN

    wanted = {chr(c) for c in range(0x10000) if unicodedata.category(chr(c)) == "Cf"}
    wanted |= {"\u034f", *map(chr, range(0xFE00, 0xFE10))}
    assert {chr(c) for c in range(0x10000) if _UNSEEN.fullmatch(chr(c))} == wanted

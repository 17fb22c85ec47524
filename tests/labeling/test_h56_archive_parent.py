"""Archiving a parent class archives every class under it, as a manager means it: none of them is offered on the
labeling page or its `/` search, none takes a new label, the settings page and the class API show none with keys (which
were the keys of other classes), and the labels already on them stay. Restoring the parent restores them with it; a
class under an archived one is not restored alone (tester h56 P6)."""

from __future__ import annotations

import re

import pytest

from labeling.models import Annotation, LabelClass, ResolvedLabel, Role
from labeling.services.projects import label_classes_from_paths
from tests.factories import page_client, page_import, png_bytes, token_client

pytestmark = pytest.mark.django_db

SHAPES = ["circle", "square", "triangle", "star"]
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]


@pytest.fixture
def shapes(project_factory, item_factory, member_of):
    """The tester's shapes-qa: 4 shapes x 6 colours, one image already labeled "triangle / red"."""
    project = project_factory(slug="shapes-qa")
    classes = label_classes_from_paths(project=project, paths=[f"{s}/{c}" for s in SHAPES for c in COLOURS])
    manager, annotator = member_of(project, Role.MANAGER, "manager"), member_of(project, Role.ANNOTATOR, "ann2")
    items = [item_factory(project=project) for _ in range(3)]
    api = token_client(annotator)
    labeled = api.post(
        f"/api/projects/{project.slug}/annotations/",
        {"item_id": items[0].pk, "class_ids": [classes["triangle/red"].pk]},
    )
    assert labeled.status_code == 201
    return {
        "project": project, "classes": classes, "items": items, "page": page_client(manager), "api": api,
        "manager_api": token_client(manager), "annotator_page": page_client(annotator),
    }  # fmt: skip


def _flash(answer) -> list[str]:
    return re.findall(r'<li class="msg-(?:success|error)">(.*?)</li>', answer.content.decode(), re.S)


def _archive(shapes, path: str):
    pk = shapes["classes"][path].pk
    return shapes["page"].post(f"/p/shapes-qa/classes/{pk}/archive/", follow=True)


def _api_classes(shapes) -> dict[str, dict]:
    answer = shapes["api"].get("/api/projects/shapes-qa/classes/")
    assert answer.status_code == 200
    return {row["stored_path"]: row for row in answer.json()}


def _settings_row(html: str, pk: int) -> str:
    return re.search(rf'<tr id="class-{pk}".*?</tr>', html, re.S).group(0)


def test_archiving_a_parent_archives_its_subclasses_and_the_flash_says_so(shapes):
    # When the manager archives "triangle" on the settings page
    answer = _archive(shapes, "triangle")

    # Then the flash names the six classes under it, and the root classes whose keys moved
    (flash,) = _flash(answer)
    assert flash.startswith(
        "Archived “triangle” and the 6 classes under it: annotators no longer see them (their labels stay). "
        "Keys changed for 7 classes: star is now 3 (was 4);"
    )
    # ... the class API lists each of them archived and without keys: no "1" beside circle's "1"
    rows = _api_classes(shapes)
    for colour in COLOURS:
        assert rows[f"triangle/{colour}"]["archived"] is True
        assert rows[f"triangle/{colour}"]["keys"] == []
    assert rows["circle"]["keys"] == ["1"]
    assert rows["star/red"]["keys"] == ["3", "1"]
    # ... and the settings page shows them archived, not with single keys
    html = shapes["page"].get("/p/shapes-qa/settings/?classes=open").content.decode()
    red = _settings_row(html, shapes["classes"]["triangle/red"].pk)
    assert "<kbd>" not in red
    assert '<span class="muted">archived</span>' in red


def test_after_a_parent_is_archived_no_subclass_is_offered_or_takes_a_label_and_old_labels_stay(shapes):
    _archive(shapes, "triangle")

    # The labeling page (whose / search looks through the classes it carries) carries no triangle class
    label_page = shapes["annotator_page"].get("/p/shapes-qa/label/").content.decode()
    paths = re.findall(r'data-path="([^"]*)"', label_page)
    assert "circle / red" in paths
    assert not [p for p in paths if p.startswith("triangle")]

    # A label naming one of them is refused as for an archived leaf, and nothing is saved
    before = Annotation.objects.count()
    green = shapes["classes"]["triangle/green"].pk
    refused = shapes["api"].post(
        "/api/projects/shapes-qa/annotations/", {"item_id": shapes["items"][1].pk, "class_ids": [green]}
    )
    assert refused.status_code == 400
    assert "Not saved: “triangle / green” was archived by a manager" in str(refused.json())
    assert Annotation.objects.count() == before
    # ... while the label made before stays on "triangle / red"
    assert Annotation.objects.filter(classes=shapes["classes"]["triangle/red"]).count() == 1


def test_archiving_a_parent_through_the_api_archives_its_subclasses(shapes):
    answer = shapes["manager_api"].patch(
        f"/api/projects/shapes-qa/classes/{shapes['classes']['triangle'].pk}/", {"archived": True}, format="json"
    )
    assert answer.status_code == 200
    rows = _api_classes(shapes)
    assert [rows[f"triangle/{c}"]["archived"] for c in COLOURS] == [True] * 6


def test_restoring_the_parent_restores_its_subclasses_with_their_keys(shapes):
    _archive(shapes, "triangle")

    (flash,) = _flash(_archive(shapes, "triangle"))

    assert flash.startswith("Restored “triangle” and the 6 classes under it: key 3 when labeling.")
    rows = _api_classes(shapes)
    assert rows["triangle/red"]["archived"] is False
    assert rows["triangle/red"]["keys"] == ["3", "1"]
    assert rows["triangle/orange"]["keys"] == ["3", "6"]
    labeled = shapes["api"].post(
        "/api/projects/shapes-qa/annotations/",
        {"item_id": shapes["items"][1].pk, "class_ids": [shapes["classes"]["triangle/green"].pk]},
    )
    assert labeled.status_code == 201


def test_a_subclass_of_an_archived_class_is_not_restored_alone(shapes):
    _archive(shapes, "triangle")

    # The settings page offers no Restore button on the subclass's row, and says what to restore
    html = shapes["page"].get("/p/shapes-qa/settings/?classes=open").content.decode()
    red = _settings_row(html, shapes["classes"]["triangle/red"].pk)
    assert ">Restore<" not in red
    assert "Restore “triangle” to restore it" in red

    # A restore posted anyway (an old page) is refused with the reason, and nothing changes
    (flash,) = _flash(_archive(shapes, "triangle/red"))
    assert flash == (
        "Not restored: “triangle / red” is under the archived class “triangle”: restore “triangle”, which restores the "
        "classes under it too."
    )
    assert LabelClass.objects.filter(project=shapes["project"], archived=True).count() == 7
    # ... as it is through the API
    answer = shapes["manager_api"].patch(
        f"/api/projects/shapes-qa/classes/{shapes['classes']['triangle/red'].pk}/", {"archived": False}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json()["archived"] == [
        "“triangle / red” is under the archived class “triangle”: restore “triangle”, which restores the classes "
        "under it too."
    ]
    assert _api_classes(shapes)["triangle/red"]["archived"] is True


def test_no_class_can_be_added_under_an_archived_class(shapes):
    _archive(shapes, "triangle")

    answer = shapes["manager_api"].post(
        "/api/projects/shapes-qa/classes/create/",
        {"name": "pink", "parent": shapes["classes"]["triangle"].pk},
        format="json",
    )

    assert answer.status_code == 400
    assert "“triangle” is archived: restore it before adding classes under it." in str(answer.json())
    assert not LabelClass.objects.filter(project=shapes["project"], name="pink").exists()


def test_an_import_into_a_new_folder_under_an_archived_class_does_not_bring_it_back(
    shapes, django_capture_on_commit_callbacks
):
    _archive(shapes, "triangle")

    # When a folder import brings images of "triangle / pink", a class the project did not have
    files = {"triangle/pink/p1.png": png_bytes(1, (40, 40)), "circle/red/r1.png": png_bytes(2, (40, 40))}
    page_import(shapes["page"], shapes["project"], files, django_capture_on_commit_callbacks, labels_from_folders=True)

    # Then the new class is archived with the rest of "triangle" (its label kept), and not offered for labeling
    rows = _api_classes(shapes)
    assert rows["triangle/pink"]["archived"] is True
    assert rows["triangle/pink"]["keys"] == []
    assert ResolvedLabel.objects.filter(classes__pk=rows["triangle/pink"]["id"]).count() == 1
    label_page = shapes["annotator_page"].get("/p/shapes-qa/label/").content.decode()
    assert "triangle / pink" not in label_page

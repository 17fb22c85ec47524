"""The overview's "Labels per class" (tester h56 P15): a class with classes under it showed only the items labeled
with it itself (circle 0 while 25 items were labeled circle / red ...). It now shows its branch total, marked "in
all"; leaves keep their own count; the table costs the same queries at 150 classes as at 4."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.models import LabelClass, LabelSource, ResolvedLabel, Role, TaskType
from tests.factories import bulk_items, page_client, taxonomy_paths

pytestmark = pytest.mark.django_db


def _classes(project, paths: list[str]) -> dict[str, LabelClass]:
    """ "a/b" paths -> their classes (parents made once), by stored path."""
    made: dict[str, LabelClass] = {}
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            key = "/".join(parts[:depth])
            if key not in made:
                parent = made.get("/".join(parts[: depth - 1]))
                made[key] = LabelClass.objects.create(project=project, name=parts[depth - 1], parent=parent)
    return made


def _label(project, items, classes: list[list[LabelClass]]) -> None:
    for item, chosen in zip(items, classes, strict=True):
        ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT).classes.set(chosen)


def _cell(page: str, label_class: LabelClass) -> str:
    """The items cell of the class's row on the overview, as a user reads it (the row found by the class's path)."""
    table = page[page.index('id="classes"') :]
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S):
        cells = [
            " ".join(re.sub(r"<[^>]+>", "", cell).split()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        if cells and cells[0] == label_class.path:
            return cells[1]
    raise AssertionError(f"no row for {label_class.path}")


def _overview(project, member_of) -> str:
    manager = member_of(project, role=Role.MANAGER)
    response = page_client(manager).get(reverse("labeling:project_detail", args=[project.slug]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_parent_class_shows_its_branch_total_and_leaves_their_own(project_factory, member_of):
    project = project_factory(slug="shapes")
    c = _classes(project, ["circle/red", "circle/green", "square/red", "star"])
    items = bulk_items(project, 7)
    red, green, circle, star = c["circle/red"], c["circle/green"], c["circle"], c["star"]
    _label(project, items, [[red], [red], [red], [green], [green], [circle], [star]])

    page = _overview(project, member_of)

    assert _cell(page, circle) == "6 in all, 1 as “circle” itself"
    assert _cell(page, c["square"]) == "0 in all"
    assert _cell(page, red) == "3"
    assert _cell(page, green) == "2"
    assert _cell(page, c["square/red"]) == "0"
    assert _cell(page, star) == "1"
    assert "A class with classes under it counts in all: the items labeled with it or with any class under it." in (
        " ".join(page.split())
    )


def test_a_multi_label_item_with_two_classes_of_a_branch_counts_once_in_it(project_factory, member_of):
    project = project_factory(slug="tags", task_type=TaskType.MULTI)
    c = _classes(project, ["animal/cat/kitten", "animal/dog", "plant"])
    items = bulk_items(project, 3)
    kitten, dog, cat, animal = c["animal/cat/kitten"], c["animal/dog"], c["animal/cat"], c["animal"]
    _label(project, items, [[kitten, dog, cat], [dog, c["plant"]], [animal, kitten]])

    page = _overview(project, member_of)

    assert _cell(page, animal) == "3 in all, 1 as “animal” itself"
    assert _cell(page, cat) == "2 in all, 1 as “animal / cat” itself"
    assert _cell(page, kitten) == "2"
    assert _cell(page, dog) == "2"
    assert _cell(page, c["plant"]) == "1"


def test_a_project_without_subclasses_reads_as_before(project_factory, member_of):
    project = project_factory(slug="flat")
    c = _classes(project, ["cat", "dog"])
    _label(project, bulk_items(project, 2), [[c["cat"]], [c["cat"]]])

    page = _overview(project, member_of)

    assert (_cell(page, c["cat"]), _cell(page, c["dog"])) == ("2", "0")
    assert "in all" not in page


def test_the_totals_cost_the_same_queries_at_150_classes(project_factory, member_of):
    def queries(slug: str, paths: list[str]) -> tuple[int, str, LabelClass]:
        project = project_factory(slug=slug)
        c = _classes(project, paths)
        leaves = [c[p] for p in paths]
        _label(project, bulk_items(project, len(leaves)), [[leaf] for leaf in leaves])
        manager = member_of(project, role=Role.MANAGER)
        client = page_client(manager)
        url = reverse("labeling:project_detail", args=[slug])
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            page = client.get(url).content.decode()
        return len(captured), page, c[paths[0].split("/")[0]]

    small, _, _ = queries("small", ["a/x", "a/y", "b"])
    paths = taxonomy_paths()
    large, page, animals = queries("large", paths)

    assert large == small
    assert _cell(page, animals) == f"{sum(p.startswith('animals/') for p in paths)} in all"

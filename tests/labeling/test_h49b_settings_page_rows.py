"""The settings page works out paths and keys only for the class rows it draws: every page of a 1,200-class taxonomy
shows each class's path and labeling-page keys exactly as the whole-project computation gives them."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import LabelClass, Role
from labeling.selectors.class_table import CLASS_TABLE_PAGE_ROWS
from labeling.selectors.classes import class_paths, class_tree
from labeling.selectors.keys import key_sequences
from labeling.selectors.queue import label_classes_for_labeling

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr id="class-(\d+)"[^>]*><td>([^<]*)</td><td class="label-keys">(.*?)</td>', re.S)


def _level(project, names: list[str], parents: list[LabelClass | None]) -> list[LabelClass]:
    LabelClass.objects.bulk_create(
        [LabelClass(project=project, name=n, parent=p) for n, p in zip(names, parents, strict=True)]
    )
    return list(LabelClass.objects.filter(project=project, name__in=names).order_by("id"))


@pytest.fixture
def big_taxonomy(project):
    """1,200 classes: 250 roots, 40 children under each of the first 10 (more than a level has keys), 25 or 50
    leaves under the first 22 of those. Orders mixed so that page 2 draws only roots; some roots hold stored hotkeys
    (a flat project's keys, which a taxonomy does not use); an archived root with active children, an archived mid
    and leaves."""
    roots = _level(project, [f"root {n:03d}" for n in range(250)], [None] * 250)
    mids = _level(project, [f"mid {n:03d}" for n in range(400)], [roots[n // 40] for n in range(400)])
    leaf_parents = [mids[n // 25] for n in range(500)] + [mids[20 + n // 25] for n in range(50)]
    leaves = _level(project, [f"leaf {n:03d}" for n in range(550)], leaf_parents)
    assert LabelClass.objects.filter(project=project).count() == 1200
    # Model order (order, id): roots 0-9 and the first 190 mids first, then 200 roots, then the rest
    LabelClass.objects.filter(project=project).update(order=2)
    LabelClass.objects.filter(pk__in=[c.pk for c in roots[:10] + mids[:190]]).update(order=0)
    LabelClass.objects.filter(pk__in=[c.pk for c in roots[10:210]]).update(order=1)
    for key, root in zip("acdefgjklmnopqrtuvwxy", roots[100:121], strict=False):
        LabelClass.objects.filter(pk=root.pk).update(hotkey=key)
    archived = [roots[3], mids[5], mids[41], leaves[0], leaves[30]]
    LabelClass.objects.filter(pk__in=[c.pk for c in archived]).update(archived=True)
    return project


def _drawn(client, project, query: str) -> list[tuple[int, str, list[str]]]:
    answer = client.get(reverse("labeling:project_settings", args=[project.slug]) + query)
    assert answer.status_code == 200
    rows = []
    for pk, path, cell in ROW.findall(answer.content.decode()):
        keys = [
            html.unescape(k) for k in re.findall(r"<kbd>([^<]*)</kbd>|<span class=\"muted\">/ to find</span>", cell)
        ]
        rows.append((int(pk), html.unescape(path), keys))
    return rows


def test_every_page_shows_the_paths_and_keys_of_the_whole_computation(big_taxonomy, member_of):
    # Given the whole-project computation: the labeling page's keys and every class's display path
    project = big_taxonomy
    keys = key_sequences(label_classes_for_labeling(project=project))
    paths = class_paths(class_tree(project=project), display=True)
    ordered = list(LabelClass.objects.filter(project=project).values_list("pk", flat=True))
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))

    # When a manager pages through the class table, then finds classes by part of their path
    pages = [_drawn(client, project, f"?classes=open&classes_page={n}") for n in range(1, 7)]
    found = _drawn(client, project, "?classes=open&classes_find=mid 04")

    # Then every page draws its 200 classes in order, each with the path and keys the whole computation gives
    for number, drawn in enumerate(pages, start=1):
        expected = ordered[(number - 1) * CLASS_TABLE_PAGE_ROWS : number * CLASS_TABLE_PAGE_ROWS]
        assert [pk for pk, _, _ in drawn] == expected, number
        assert drawn == [(pk, paths[pk], keys.get(pk, [])) for pk in expected], number
    # page 2 is roots only, among them roots with stored hotkeys that a taxonomy's numbering does not use
    assert all(" / " not in path for _, path, _ in pages[1])
    page_two = {path: k for _, path, k in pages[1]}
    assert page_two["root 010"] == ["a"]  # root 003 is archived: roots 000-009 take 1-9
    assert page_two["root 100"] == [""]  # its stored hotkey "a" is a flat project's key
    # and the found classes too (a find reads every path, the keys still only for the rows drawn)
    matching = [pk for pk in ordered if all(word in paths[pk] for word in ("mid", "04"))]  # every word, any order
    assert [row[0] for row in found] == matching[:CLASS_TABLE_PAGE_ROWS]
    assert found == [(pk, paths[pk], keys.get(pk, [])) for pk in matching[:CLASS_TABLE_PAGE_ROWS]]

"""The settings page of a 1,332-class, three-level taxonomy as a manager reported it: the find box matches words in any
order (as the labeling page's / search does), a pager above the table too, "Add class" shows the new class's row,
path and keys, and an archive or restore names the class and the classes whose labeling keys it changed."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from labeling.models import LabelClass, Role
from labeling.selectors.classes import class_tree
from labeling.selectors.keys import key_sequences
from labeling.selectors.queue import label_classes_for_labeling
from labeling.services.projects import label_class_create, label_classes_from_paths
from tests.factories import page_client
from tests.labeling.test_h49b_settings_page_rows import big_taxonomy  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

ROW_ID = re.compile(r'<tr id="class-(\d+)"')


def three_level_paths() -> list[str]:
    # 12 groups x 10 subs x 10 leaves: 1,200 leaves, 120 subs, 12 groups = 1,332 classes
    return [f"group{g:02d}/sub{g:02d}_{s}/leaf{g:02d}_{s}_{n}" for g in range(12) for s in range(10) for n in range(10)]


@pytest.fixture
def taxonomy(project_factory, member_of):
    project = project_factory(slug="tax")
    label_classes_from_paths(project=project, paths=three_level_paths())
    assert LabelClass.objects.filter(project=project).count() == 1332
    return project, page_client(member_of(project, Role.MANAGER, "mia"))


def _page(client, project, query: str = "") -> str:
    answer = client.get(f"/p/{project.slug}/settings/{query}")
    assert answer.status_code == 200
    return answer.content.decode()


def _row_ids(html: str) -> list[int]:
    return [int(pk) for pk in ROW_ID.findall(html)]


def _messages(html: str) -> list[str]:
    return re.findall(r'<li class="msg-success">(.*?)</li>', html, re.S)


@pytest.mark.parametrize("find", ["group03 leaf03_2_5", "leaf03_2_5 GROUP03", "sub03_2 group03 5", "leaf03_2_5"])
def test_the_find_box_matches_every_word_in_any_order(taxonomy, find):
    # Given the manager of 1,332 classes, when they find a class by words of its path in any order
    project, client = taxonomy
    wanted = LabelClass.objects.get(project=project, name="leaf03_2_5")
    html = _page(client, project, f"?classes=open&classes_find={find}")

    # Then its row is drawn, and every row drawn holds each word
    rows = _row_ids(html)
    assert wanted.pk in rows
    for pk in rows:
        path = re.search(rf'<tr id="class-{pk}"[^>]*><td>([^<]*)</td>', html).group(1).lower()
        assert all(word.lower() in path for word in find.split())


def test_a_word_no_path_holds_finds_nothing(taxonomy):
    project, client = taxonomy
    html = _page(client, project, "?classes=open&classes_find=group03+leaf04")
    assert _row_ids(html) == []
    assert "No class’s path holds every word of “group03 leaf04”." in html  # noqa: RUF001 (the page's apostrophe)


def test_the_pager_is_above_the_table_too_with_page_numbers_that_keep_the_find(taxonomy):
    project, client = taxonomy

    # Page 2 of all the classes: where it is, and links to the pages around it, above the table as below
    html = _page(client, project, "?classes=open&classes_page=2")
    above, below = html.split("<table>", 1)[0], html.split("</table>", 1)[1]
    assert "Classes 201–400 of 1,332, page 2 of 7." in above  # noqa: RUF001 (the page's dash)
    for part in (above, below):
        nav = re.search(r'<nav class="class-pages".*?</nav>', part, re.S).group(0)
        numbers = re.findall(r'classes_page=(\d+)"(?: rel="\w+")?(?: aria-label="Page \d+")?>([^<]*)</a>', nav)
        assert numbers == [("1", "← Previous"), ("1", "1"), ("3", "3"), ("4", "4"), ("7", "7"), ("3", "Next →")]
        assert '<span aria-current="page">2</span>' in nav
        assert '<span class="muted">…</span>' in nav  # pages 5 and 6 left out

    # A find of more than a page: its pages' links keep the find
    found = _page(client, project, "?classes=open&classes_find=leaf+group0&classes_page=3")
    assert "Classes 401–600 of 1,000 whose path holds every word of “leaf group0”, page 3 of 5." in found  # noqa: RUF001
    nav = re.search(r'<nav class="class-pages".*?</nav>', found.split("<table>", 1)[0], re.S).group(0)
    links = re.findall(r'href="([^"]*)"', nav)
    assert links
    assert all("classes_find=leaf%20group0" in link for link in links)
    assert {re.search(r"classes_page=(\d+)", link).group(1) for link in links} == {"1", "2", "4", "5"}


def test_adding_a_class_shows_its_row_path_and_keys(taxonomy):
    # Given the manager adds a leaf under group03 / sub03_2 (typed as the page shows the path)
    project, client = taxonomy
    answer = client.post(
        f"/p/{project.slug}/settings/", {"action": "class", "name": "leaf03_2_new", "parent_path": "group03 / sub03_2"}
    )
    added = LabelClass.objects.get(project=project, name="leaf03_2_new")

    # Then the page they return to is open at the new class's row, which is drawn, with its path and keys named
    assert answer.status_code == 302
    assert answer.url.endswith(f"#class-{added.pk}")
    assert parse_qs(urlsplit(answer.url).query)["classes"] == ["open"]
    html = client.get(answer.url).content.decode()
    assert '<details id="class-list" open>' in html
    assert added.pk in _row_ids(html)
    assert _messages(html) == ["Class “group03 / sub03_2 / leaf03_2_new” added: keys 4 → 3 → c when labeling."]


def test_a_new_class_whose_name_finds_many_is_shown_on_the_page_that_holds_it(taxonomy):
    # Given a new class named "0", which is in the paths of hundreds of classes, added last
    project, client = taxonomy
    answer = client.post(
        f"/p/{project.slug}/settings/", {"action": "class", "name": "0", "parent_path": "group11 / sub11_9"}
    )
    added = LabelClass.objects.get(project=project, name="0")

    # Then the page returned to draws its row (not the first page of the find)
    html = client.get(answer.url).content.decode()
    assert added.pk in _row_ids(html)
    assert "Class “group11 / sub11_9 / 0” added" in html


def test_archiving_names_the_class_and_the_keys_it_renumbered_and_restoring_too(taxonomy):
    # Given leaf03_7_9 is picked with 4 → 8 → a
    project, client = taxonomy
    eighth = LabelClass.objects.get(project=project, name="leaf03_7_8")
    ninth = LabelClass.objects.get(project=project, name="leaf03_7_9")
    cell = '<td class="label-keys"><kbd>4</kbd> → <kbd>8</kbd> → <kbd>a</kbd>'
    assert f'<tr id="class-{ninth.pk}"><td>group03 / sub03_7 / leaf03_7_9</td>{cell}' in _page(
        client, project, "?classes_find=leaf03_7_9"
    )

    # When the manager archives leaf03_7_8
    html = client.post(f"/p/{project.slug}/classes/{eighth.pk}/archive/", follow=True).content.decode()

    # Then the message names it and the class whose keys changed, and its row is drawn
    assert _messages(html) == [
        "Archived “group03 / sub03_7 / leaf03_7_8”: annotators no longer see it (its labels stay). Keys changed for "
        "1 class: group03 / sub03_7 / leaf03_7_9 is now 4 → 8 → 9 (was 4 → 8 → a)."
    ]
    assert eighth.pk in _row_ids(html)

    # When they restore it, the keys go back, and the message says so
    html = client.post(f"/p/{project.slug}/classes/{eighth.pk}/archive/", follow=True).content.decode()
    assert _messages(html) == [
        "Restored “group03 / sub03_7 / leaf03_7_8”: keys 4 → 8 → 9 when labeling. Keys changed for 1 class: "
        "group03 / sub03_7 / leaf03_7_9 is now 4 → 8 → a (was 4 → 8 → 9)."
    ]


def test_archiving_a_last_class_renumbers_nothing_and_a_middle_one_names_a_few_of_many(taxonomy):
    project, client = taxonomy
    last = LabelClass.objects.get(project=project, name="leaf03_7_9")
    html = client.post(f"/p/{project.slug}/classes/{last.pk}/archive/", follow=True).content.decode()
    assert _messages(html) == [
        "Archived “group03 / sub03_7 / leaf03_7_9”: annotators no longer see it (its labels stay)."
    ]

    # Archiving sub05_0 renumbers sub05_1 … sub05_9 and their 90 leaves: five are named, then how many more
    sub = LabelClass.objects.get(project=project, name="sub05_0")
    (message,) = _messages(client.post(f"/p/{project.slug}/classes/{sub.pk}/archive/", follow=True).content.decode())
    assert message.startswith(
        "Archived “group05 / sub05_0” and the 10 classes under it: annotators no longer see them (their labels stay). "
        "Keys changed for 99 classes: "
        "group05 / sub05_1 is now 6 → 1 (was 6 → 2); group05 / sub05_1 / leaf05_1_0 is now 6 → 1 → 1 (was 6 → 2 → 1);"
    )
    assert message.endswith("; and 94 more.")


def test_a_first_subclass_turns_a_flat_project_into_a_taxonomy_and_the_message_says_whose_keys_changed(
    project_factory, member_of
):
    # Given a flat project whose manager chose the keys q and w
    project = project_factory(slug="flat")
    cat = label_class_create(project=project, name="cat", hotkey="q")
    label_class_create(project=project, name="dog", hotkey="w")
    client = page_client(member_of(project, Role.MANAGER, "mia"))

    # When they add a class under cat, the labeling page numbers every level: cat and dog get 1 and 2
    html = client.post(
        f"/p/{project.slug}/settings/", {"action": "class", "name": "kitten", "parent": cat.pk}, follow=True
    ).content.decode()
    assert _messages(html) == [
        "Class “cat / kitten” added: keys 1 → 1 when labeling. Keys changed for 2 classes: cat is now 1 (was q); "
        "dog is now 2 (was w)."
    ]


def _subtree(project, root_pk: int) -> set[int]:
    tree = class_tree(project=project)
    under = {root_pk}
    grew = True
    while grew:
        more = {pk for pk, (_, parent) in tree.items() if parent in under} - under
        under |= more
        grew = bool(more)
    return under


@pytest.mark.parametrize(
    "name", ["root 000", "root 003", "root 100", "root 249", "mid 005", "mid 041", "mid 050", "leaf 030", "leaf 100"]
)
def test_the_keys_changed_count_is_the_whole_computations(big_taxonomy, member_of, name):  # noqa: F811
    # Given 1,200 classes with archived roots, mids and leaves, and stored hotkeys a taxonomy does not use
    project = big_taxonomy
    toggled = LabelClass.objects.get(project=project, name=name)
    client = page_client(member_of(project, Role.MANAGER))
    was = key_sequences(label_classes_for_labeling(project=project))

    # When the manager archives (or restores) the class
    (message,) = _messages(
        client.post(f"/p/{project.slug}/classes/{toggled.pk}/archive/", follow=True).content.decode()
    )

    # Then the message counts the classes whose keys the labeling page changed, but for the class and its subclasses
    now = key_sequences(label_classes_for_labeling(project=project))
    skip = _subtree(project, toggled.pk)
    changed = [pk for pk, keys in now.items() if pk not in skip and pk in was and was[pk] != keys]
    counted = re.search(r"Keys changed for (\d+) class", message)
    assert (int(counted.group(1)) if counted else 0) == len(changed), message


def test_archiving_from_a_find_keeps_the_find_while_it_still_draws_the_class(taxonomy):
    # Given the manager found the 10 leaves of sub03_7 (and the sub itself) by two words
    project, client = taxonomy
    html = _page(client, project, "?classes=open&classes_find=sub03_7 group03")
    assert 'name="classes_find" value="sub03_7 group03"' in html  # the row forms carry the find
    eighth = LabelClass.objects.get(project=project, name="leaf03_7_8")

    # When they archive one leaf, from that page's form
    answer = client.post(f"/p/{project.slug}/classes/{eighth.pk}/archive/", {"classes_find": "sub03_7 group03"})

    # Then the page comes back with their find, not the class's name, and draws the same rows
    assert "classes_find=sub03_7+group03" in answer.url
    assert len(_row_ids(client.get(answer.url).content.decode())) == 11

    # A find that no longer draws the class (renamed away from it) falls back to the class's name
    answer = client.post(
        f"/p/{project.slug}/classes/{eighth.pk}/rename/", {"name": "other", "classes_find": "leaf03_7_8"}
    )
    assert "classes_find=other" in answer.url

"""The project settings page's class table: every class read once, and what the page shows of it worked out from
that one read for the rows it draws (each class's path, the keys an annotator presses for it, the add-class form's
parent choices)."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import cached_property

from labeling.models import LabelClass, Project
from labeling.selectors.classes import ClassTree, class_path, class_path_display, class_path_names, classes_below
from labeling.selectors.keys import key_sequences
from labeling.selectors.queue import CLASS_ROW_FIELDS, ClassRow, class_options


@dataclass(frozen=True)
class ClassTable:
    """Every class of a project, archived ones too, as rows (CLASS_ROW_FIELDS) in the model's order. At 10,000
    classes working out every path and key took most of the page's time to draw 200 rows of them, so each is worked
    out for the classes asked about, from the same rows."""

    project: Project
    rows: list[ClassRow]
    _paths: dict[int, str] = field(default_factory=dict, repr=False)  # display paths worked out so far

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def tree(self) -> ClassTree:
        return {r[0]: (r[1], r[2]) for r in self.rows}

    @cached_property
    def _archived(self) -> set[int]:
        return {r[0] for r in self.rows if r[5]}

    def paths(self, ids: Iterable[int]) -> dict[int, str]:
        """Class id -> display path ("animals / cat"), for `ids`."""
        for pk in ids:
            if pk not in self._paths:
                self._paths[pk] = class_path_display(class_path_names(pk, self.tree))
        return {pk: self._paths[pk] for pk in ids}

    def parents(self) -> list[tuple[int, str]]:
        """(id, path) of the classes a new class may go under (the add-class form's parents), in the table's order."""
        active = [r[0] for r in self.rows if not r[5]]
        paths = self.paths(active)
        return [(pk, paths[pk]) for pk in active]

    def label_keys(self, ids: Collection[int]) -> dict[int, list[str]]:
        """Class id -> its keys on the labeling page (label_classes_for_labeling, then key_sequences; an archived
        class has none), for `ids`: in a taxonomy every level is numbered on its own, so the stored hotkeys are not
        the keys an annotator presses.

        A class's keys are its own and its ancestors' among their siblings, and a level's keys depend only on its
        own sibling group (key_sequences numbers each group on its own). So only the groups that hold one of `ids` or
        an ancestor of one are numbered, each whole and in order, and those groups hold every ancestor of their
        classes. One fact about the whole project counts too: whether it is flat (every active class a root), where
        the stored hotkeys are the keys; a taxonomy whose asked-about rows are all roots gets one more group, with
        its ancestors, so the keys are numbered as in a taxonomy."""
        groups = self._groups_above(ids)
        active_groups = {r[2] for r in self.rows if not r[5]}
        if groups & active_groups == {None} and active_groups != {None}:
            deeper = next(r[0] for r in self.rows if not r[5] and r[2] is not None)
            groups |= self._groups_above([deeper])
        sequences = key_sequences(class_options(r for r in self.rows if r[2] in groups))
        return {pk: sequences.get(pk, []) for pk in ids}

    def is_under(self, class_id: int, ancestor: int) -> bool:
        """Whether the class is a subclass of `ancestor`, at any depth."""
        return ancestor in self._groups_above([class_id])

    def _groups_above(self, ids: Iterable[int]) -> set[int | None]:
        """The parent ids (None: the top level) of the classes `ids` and of all their ancestors."""
        groups: set[int | None] = set()
        for pk in ids:
            node, seen = pk, set()
            while node is not None and node in self.tree and node not in seen:  # a cycle must not hang the walk
                seen.add(node)
                node = self.tree[node][1]
                groups.add(node)
        return groups

    @cached_property
    def flat(self) -> bool:
        """Whether every active class is a root: the labeling page then keys classes by their stored hotkeys."""
        return {r[2] for r in self.rows if not r[5]} <= {None}

    def active_under(self, ids: Iterable[int]) -> set[int]:
        """The active subclasses of `ids`, at any depth, reached through active classes only (below an archived class
        the labeling page's keys start again: key_sequences stops at a class without keys)."""
        children: dict[int | None, list[int]] = {}
        for r in self.rows:
            if not r[5]:
                children.setdefault(r[2], []).append(r[0])
        return classes_below(children, ids)

    def under(self, class_id: int) -> set[int]:
        """Every class under `class_id`, at any depth, archived ones too."""
        children: dict[int | None, list[int]] = {}
        for r in self.rows:
            children.setdefault(r[2], []).append(r[0])
        return classes_below(children, [class_id])

    def archived_above(self, class_id: int) -> int | None:
        """The highest archived class above `class_id` (the one a restore must start from), or None."""
        archived = self._archived
        found, node, seen = None, self.tree.get(class_id, ("", None))[1], {class_id}
        while node is not None and node in self.tree and node not in seen:
            seen.add(node)
            found = node if node in archived else found
            node = self.tree[node][1]
        return found

    def classes(self, ids: list[int]) -> list[LabelClass]:
        """The classes `ids`, in that order, as LabelClass rows with `path` attached (no query), `stored_path`,
        `label_keys` and, for an archived class under an archived one, `archived_above` (that class's path)."""
        wanted = set(ids)
        rows = {r[0]: r for r in self.rows if r[0] in wanted}
        paths, keys = self.paths(ids), self.label_keys(wanted)
        classes = []
        for pk in ids:
            _, name, parent_id, hotkey, color, archived, order = rows[pk]
            c = LabelClass(
                pk=pk, project=self.project, name=name, parent_id=parent_id, hotkey=hotkey, color=color,
                archived=archived, order=order,
            )  # fmt: skip
            c.__dict__["attached_path"] = paths[pk]
            c.stored_path = class_path(class_path_names(pk, self.tree))  # as exports and predictions spell it
            c.label_keys = keys[pk]
            above = self.archived_above(pk) if archived else None
            c.archived_above = self.paths([above])[above] if above is not None else ""
            classes.append(c)
        return classes


def class_table(*, project: Project) -> ClassTable:
    """Every class of the project, in one query; paths and keys are worked out from it for the classes asked about."""
    return ClassTable(
        project=project, rows=list(LabelClass.objects.filter(project=project).values_list(*CLASS_ROW_FIELDS))
    )


# Past this many classes the settings page shows the class table a page at a time, with a find box: every row of a
# 10,000-class taxonomy was 8.9 MB of HTML that Chromium had not drawn after 130 s.
CLASS_TABLE_PAGED_OVER = 500
CLASS_TABLE_PAGE_ROWS = 200


def keys_renumbered(before: ClassTable, after: ClassTable, *, class_id: int) -> list[int]:
    """The active classes, in the table's order, whose keys on the labeling page differ from `before` to `after`, two
    reads of one project's classes between which only the class `class_id` was added, archived or restored; neither
    it nor its subclasses (their keys come and go with it).

    A level's keys depend on its sibling group alone, and on whether the project is flat: so unless that changed
    (then every class is compared), only the class's siblings can be renumbered, and with each the classes under it.
    At 10,000 classes this is what keeps an archive from working out every class's path and keys twice."""
    if before.flat != after.flat:
        ids = [r[0] for r in after.rows if not r[5]]
        was, now = before.label_keys(ids), after.label_keys(ids)
        changed = {pk for pk in ids if was[pk] != now[pk] and not after.is_under(pk, class_id)}
    else:
        parent = after.tree[class_id][1]
        siblings = [r[0] for r in after.rows if r[2] == parent and not r[5] and r[0] != class_id]
        was, now = before.label_keys(siblings), after.label_keys(siblings)
        moved = [pk for pk in siblings if was[pk] != now[pk]]
        changed = set(moved) | after.active_under(moved)
    changed.discard(class_id)
    return [r[0] for r in after.rows if r[0] in changed]


def _fold(text: str) -> str:
    """Text as the labeling page's class search compares it (static/js/class-keys.js, fold): without accents or
    case ("Café" and "cafe" are the same)."""
    return "".join(
        ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.category(ch).startswith("M")
    ).lower()


def class_find_matches(table: ClassTable, find: str) -> list[int]:
    """The ids of the classes, in the table's order, whose display path holds every word of `find` in any order
    ("group03 leaf03_2_5" finds "group03 / sub03_2 / leaf03_2_5"): the labeling page's `/` search rule
    (class-keys.js, search), so a manager finds a class as an annotator does. Every class when `find` is blank."""
    ids = [r[0] for r in table.rows]
    words = _fold(find).split()
    if not words:
        return ids
    return [pk for pk, path in table.paths(ids).items() if all(w in _fold(path) for w in words)]


@dataclass(frozen=True)
class PagerLink:
    text: str
    page: int | None  # None: pages left out (…)
    current: bool = False
    rel: str = ""


@dataclass(frozen=True)
class ClassTablePage:
    rows: list[LabelClass]  # the classes to draw, each with its path and label_keys
    paged: bool  # False: every class, as before; True: one page of those matching `find`
    find: str
    page: int
    pages: int
    matching: int  # how many classes match `find` (all of them when it is empty)

    @property
    def first(self) -> int:
        return (self.page - 1) * CLASS_TABLE_PAGE_ROWS + 1 if self.matching else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0

    @property
    def pager(self) -> list[PagerLink]:
        """Previous, the first and last pages, two either side of this one (a gap of one page is drawn as that
        page, a longer one as …), next: every page in two clicks at 50 pages and more."""
        if self.pages <= 1:
            return []
        numbers = sorted({1, self.pages, *range(max(1, self.page - 2), min(self.pages, self.page + 2) + 1)})
        links = [PagerLink("← Previous", self.page - 1, rel="prev")] if self.page > 1 else []
        for before, number in zip([0, *numbers], numbers, strict=False):
            if number - before == 2:
                links.append(PagerLink(str(before + 1), before + 1))
            elif number - before > 2:
                links.append(PagerLink("…", None))
            links.append(PagerLink(str(number), number, current=number == self.page))
        if self.page < self.pages:
            links.append(PagerLink("Next →", self.page + 1, rel="next"))
        return links


def _clean_find(find: str) -> str:
    return find.strip()[:200]


def class_table_page(table: ClassTable, *, find: str = "", page: str | int | None = None) -> ClassTablePage:
    """Which of the table's classes the settings page draws: all of them up to CLASS_TABLE_PAGED_OVER classes (a find
    narrows them still), else page `page` (from 1; a bad or past-the-end one is the nearest) of
    CLASS_TABLE_PAGE_ROWS rows. `find` keeps the classes class_find_matches finds (every path is worked out for it;
    the keys still only for the rows drawn)."""
    find = _clean_find(find)
    ids = class_find_matches(table, find)
    if len(table) <= CLASS_TABLE_PAGED_OVER:
        return ClassTablePage(rows=table.classes(ids), paged=False, find=find, page=1, pages=1, matching=len(ids))
    pages = max(1, -(-len(ids) // CLASS_TABLE_PAGE_ROWS))
    try:
        number = min(max(int(page or 1), 1), pages)
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * CLASS_TABLE_PAGE_ROWS
    rows = table.classes(ids[start : start + CLASS_TABLE_PAGE_ROWS])
    return ClassTablePage(rows=rows, paged=True, find=find, page=number, pages=pages, matching=len(ids))


def class_table_return(table: ClassTable, class_id: int, find: str, name: str) -> tuple[str, int]:
    """The find and page (from 1) of class_table_page that the settings page returns to after a rename or archive
    of the class `class_id` (now called `name`): the manager's own `find` (cleaned) while it still finds the class,
    so that archiving one sibling after another keeps it, else the class's name; the page of that find which draws
    the class (a short name may find more than a page of classes; 1 if none does)."""
    find = _clean_find(find)
    ids = class_find_matches(table, find) if find else []
    if class_id not in ids:
        find = _clean_find(name)
        ids = class_find_matches(table, find)
    if len(table) <= CLASS_TABLE_PAGED_OVER or class_id not in ids:
        return find, 1
    return find, ids.index(class_id) // CLASS_TABLE_PAGE_ROWS + 1

"""The project settings page's class table: every class read once, and what the page shows of it worked out from
that one read for the rows it draws (each class's path, the keys an annotator presses for it, the add-class form's
parent choices)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import cached_property

from labeling.models import LabelClass, Project
from labeling.selectors.classes import ClassTree, class_path_display, class_path_names
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

    def classes(self, ids: list[int]) -> list[LabelClass]:
        """The classes `ids`, in that order, as LabelClass rows with `path` attached (no query) and `label_keys`."""
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
            c.label_keys = keys[pk]
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


def class_table_page(table: ClassTable, *, find: str = "", page: str | int | None = None) -> ClassTablePage:
    """Which of the table's classes the settings page draws: all of them up to CLASS_TABLE_PAGED_OVER classes (a find
    narrows them still), else page `page` (from 1; a bad or past-the-end one is the nearest) of
    CLASS_TABLE_PAGE_ROWS rows. `find` keeps the classes whose displayed path holds it, case ignored (every path is
    worked out for it; the keys still only for the rows drawn)."""
    find = find.strip()[:200]
    ids = [r[0] for r in table.rows]
    if find:
        wanted = find.casefold()
        ids = [pk for pk, path in table.paths(ids).items() if wanted in path.casefold()]
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

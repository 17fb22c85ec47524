"""The project settings page's class table: every class read once, and what the page shows of it worked out from
that one read (each class's path, the keys an annotator presses for it, the add-class form's parent choices)."""

from __future__ import annotations

from dataclasses import dataclass

from labeling.models import LabelClass, Project
from labeling.selectors.classes import paths_attached
from labeling.selectors.keys import key_sequences
from labeling.selectors.queue import class_options


@dataclass(frozen=True)
class ClassTable:
    classes: list[LabelClass]  # every class, archived ones too, in the model's order, each with its path attached
    label_keys: dict[int, list[str]]  # active class id -> its keys on the labeling page (key_sequences)

    @property
    def active(self) -> list[LabelClass]:
        """The classes a new class may go under (the add-class form's parents), in the same order."""
        return [c for c in self.classes if not c.archived]


def class_table(*, project: Project) -> ClassTable:
    """Every class of the project with its display path and its labeling-page keys, in one query.

    The keys are the labeling page's (label_classes_for_labeling, then key_sequences), worked out from the same rows:
    in a taxonomy every level is numbered on its own, so the stored hotkeys are not the keys an annotator presses.
    An archived class has none.
    """
    classes = list(LabelClass.objects.filter(project=project))
    classes = paths_attached(classes, project=project, tree={c.pk: (c.name, c.parent_id) for c in classes})
    options = class_options((c.pk, c.name, c.parent_id, c.hotkey, c.color, c.archived, c.order) for c in classes)
    return ClassTable(classes=classes, label_keys=key_sequences(options))


# Past this many classes the settings page shows the class table a page at a time, with a find box: every row of a
# 10,000-class taxonomy was 8.9 MB of HTML that Chromium had not drawn after 130 s.
CLASS_TABLE_PAGED_OVER = 500
CLASS_TABLE_PAGE_ROWS = 200


@dataclass(frozen=True)
class ClassTablePage:
    rows: list[LabelClass]  # the classes to draw
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


def class_table_page(classes: list[LabelClass], *, find: str = "", page: str | int | None = None) -> ClassTablePage:
    """Which of the table's classes the settings page draws: all of them up to CLASS_TABLE_PAGED_OVER classes (a find
    narrows them still), else page `page` (from 1; a bad or past-the-end one is the nearest) of
    CLASS_TABLE_PAGE_ROWS rows. `find` keeps the classes whose displayed path holds it, case ignored."""
    find = find.strip()[:200]
    matching = [c for c in classes if find.casefold() in c.path.casefold()] if find else classes
    if len(classes) <= CLASS_TABLE_PAGED_OVER:
        return ClassTablePage(rows=matching, paged=False, find=find, page=1, pages=1, matching=len(matching))
    pages = max(1, -(-len(matching) // CLASS_TABLE_PAGE_ROWS))
    try:
        number = min(max(int(page or 1), 1), pages)
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * CLASS_TABLE_PAGE_ROWS
    rows = matching[start : start + CLASS_TABLE_PAGE_ROWS]
    return ClassTablePage(rows=rows, paged=True, find=find, page=number, pages=pages, matching=len(matching))

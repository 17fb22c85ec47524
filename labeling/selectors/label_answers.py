"""Who gave which label on an item: every live annotation's annotator and classes, for the suspects list and the
review card (two annotators who agree are the strongest evidence that a suspected label is right)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from labeling.models import Annotation, LabelClass


@dataclass(frozen=True)
class Answer:
    username: str
    classes: tuple[LabelClass, ...]

    @property
    def class_ids(self) -> frozenset[int]:
        return frozenset(c.pk for c in self.classes)


def answers_by_item(*, item_ids: list[int]) -> dict[int, list[Answer]]:
    """{item id: its live annotations (not skips, not undone, not undo rows) as Answers, oldest first}. Two
    queries for any number of items (the annotations with their users, then their classes): callers pass a page's
    items (at most a few hundred)."""
    rows = (
        Annotation.objects.filter(item_id__in=item_ids, skipped=False, undoes__isnull=True)
        .filter(~Exists(Annotation.objects.filter(undoes=OuterRef("pk"))))
        .select_related("user")
        .prefetch_related("classes")
        .order_by("created_at", "id")
    )
    out: dict[int, list[Answer]] = {}
    for a in rows:
        out.setdefault(a.item_id, []).append(Answer(a.user.get_username(), tuple(a.classes.all())))
    return out


def agreeing_and_differing(answers: list[Answer], given: set[int]) -> tuple[list[str], list[Answer]]:
    """(the annotators whose answer is exactly the `given` classes, the answers that differ from it)."""
    same = [a.username for a in answers if a.class_ids == given]
    return same, [a for a in answers if a.class_ids != given]

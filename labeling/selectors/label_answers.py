"""Who gave which label on an item: every live annotation's annotator and classes, for the suspects list and the
review card (two annotators who agree are the strongest evidence that a suspected label is right)."""

from __future__ import annotations

from dataclasses import dataclass

from labeling.models import Annotation, LabelClass


@dataclass(frozen=True)
class Answer:
    username: str
    classes: tuple[LabelClass, ...]

    @property
    def class_ids(self) -> frozenset[int]:
        return frozenset(c.pk for c in self.classes)


def labels_by_item(*, item_ids: list[int]) -> dict[int, list[Annotation]]:
    """{item id: its standing labels (Annotation.objects.answers()), oldest first, with their users and classes
    loaded}. Two queries for any number of items: callers pass a page's items (at most a few hundred)."""
    rows = (
        Annotation.objects.filter(item_id__in=item_ids)
        .answers()
        .select_related("user")
        .prefetch_related("classes")
        .order_by("created_at", "id")
    )
    out: dict[int, list[Annotation]] = {}
    for a in rows:
        out.setdefault(a.item_id, []).append(a)
    return out


def answers_by_item(*, item_ids: list[int]) -> dict[int, list[Answer]]:
    """{item id: its standing labels as Answers (who said which classes), oldest first}."""
    return {
        item_id: [Answer(a.user.get_username(), tuple(a.classes.all())) for a in labels]
        for item_id, labels in labels_by_item(item_ids=item_ids).items()
    }


def agreeing_and_differing(answers: list[Answer], given: set[int]) -> tuple[list[str], list[Answer]]:
    """(the annotators whose answer is exactly the `given` classes, the answers that differ from it)."""
    same = [a.username for a in answers if a.class_ids == given]
    return same, [a for a in answers if a.class_ids != given]

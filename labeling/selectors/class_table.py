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

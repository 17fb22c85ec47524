"""Fixtures of the labeling-page browser tests that need only a small project."""

from __future__ import annotations

import pytest

from labeling.models import Annotation, Role

# The id of the item on the labeling card once its image is on screen, else false.
CARD = "() => { const c = document.getElementById('item-card'); return c?.dataset.ready === '1' && c.dataset.item; }"


def next_card(page, after: str) -> str:
    """Wait for a card other than `after` to be on screen; its item id."""
    return page.wait_for_function(f"() => {{ const i = ({CARD})(); return i && i !== '{after}' && i; }}").json_value()


def labels_by_ann() -> dict[int, str]:
    """item id -> class name of every label by "ann" (single-label projects)."""
    return dict(Annotation.objects.filter(user__username="ann").values_list("item_id", "classes__name"))


@pytest.fixture
def pets_labeling(page, login, project_factory, label_class_factory, item_factory, member_of):
    """Annotator "ann" (password "pw") on the labeling page of "Pets" (slug pets): classes cat (key 1) and dog (key 2),
    8 images in priority order. Returns (project, user, the item id on the first card once it is on screen)."""
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    label_class_factory(project=project, name="dog", hotkey="2")
    for n in range(8):
        item_factory(project=project, priority=100 - n)
    ann = member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/pets/label/")
    return project, ann, page.wait_for_function(CARD).json_value()

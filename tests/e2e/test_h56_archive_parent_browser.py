"""In the browser: a manager archives the parent class "triangle" on the settings page; the annotator's `/` search
finds none of its subclasses, and the keys the settings page shows are the keys that work (tester h56 P6)."""

from __future__ import annotations

import re

import pytest

from labeling.models import Annotation, Role
from labeling.services.projects import label_classes_from_paths
from tests.e2e.conftest import CARD, next_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEARCH_TEXT = "() => document.getElementById('search-results').textContent"


def _settings_keys(page, path: str) -> str:
    row = page.locator("#class-list tbody tr", has=page.locator(f"td:text-is('{path}')"))
    return re.sub(r"\s+", " ", row.locator("td.label-keys").inner_text()).strip()


def test_an_archived_parent_takes_its_subclasses_out_of_search_and_the_keys_shown_are_the_keys_that_work(
    page, login, project_factory, item_factory, member_of
):
    project = project_factory(name="Shapes QA", slug="shapes-qa", holdout_fraction=0.0)
    colours = ["red", "green", "blue", "yellow", "purple", "orange"]
    label_classes_from_paths(project=project, paths=[f"{s}/{c}" for s in ("circle", "square", "triangle", "star")
                                                      for c in colours])  # fmt: skip
    for n in range(4):
        item_factory(project=project, priority=100 - n)
    member_of(project, Role.MANAGER, "mia")
    ann = member_of(project, Role.ANNOTATOR, "ann")

    # The manager archives "triangle" on the settings page
    login("mia")
    page.goto("/p/shapes-qa/settings/?classes=open")
    page.locator("#class-list tbody tr", has=page.locator("td:text-is('triangle')")).locator(
        "button:text-is('Archive')"
    ).click()
    page.wait_for_selector(".msg-success")
    flash = page.locator(".msg-success").inner_text()
    assert flash.startswith(
        "Archived “triangle” and the 6 classes under it: annotators no longer see them (their labels stay)."
    )
    # ... its subclasses show no keys; star's show the keys it moved to
    assert _settings_keys(page, "triangle / red") == "archived"
    assert _settings_keys(page, "star / red") == "3 → 1"

    # The annotator's / search finds no triangle class
    page.context.clear_cookies()
    login("ann")
    page.goto("/p/shapes-qa/label/")
    first = page.wait_for_function(CARD).json_value()
    page.keyboard.press("/")
    page.keyboard.type("red")
    page.wait_for_function(f"() => ({SEARCH_TEXT})().includes('star / red')")
    found = page.evaluate(SEARCH_TEXT)
    assert "circle / red" in found
    assert "triangle" not in found
    page.keyboard.press("Escape")

    # ... and 3 then 1, the keys the settings page shows for "star / red", label it so
    page.keyboard.press("3")
    page.keyboard.press("1")
    next_card(page, first)
    labeled = Annotation.objects.filter(user=ann)
    assert [a.classes.get().path for a in labeled] == ["star / red"]

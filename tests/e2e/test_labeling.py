"""An annotator labels in a real browser: number keys, undo, skip, multi-label with taxonomy search, grid."""

from __future__ import annotations

import pytest

from labeling.models import Annotation, ResolvedLabel, Role, TaskType

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def current_item(page) -> str:
    return page.locator("#item-card").get_attribute("data-item")


def press_and_wait_for_next(page, key: str) -> None:
    # The page ignores keys while a request is in flight (one press = one label): press once it is idle,
    # as a person would after seeing the new image.
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    before = current_item(page)
    page.keyboard.press(key)
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=before)


def test_annotator_labels_undoes_skips_uses_taxonomy_and_grid(
    page, login, screenshot, project_factory, label_class_factory, item_factory, member_of
):
    flat = project_factory(name="Pets", slug="pets", holdout_fraction=0.0, instructions="Label the main animal.")
    cat = label_class_factory(project=flat, name="cat", hotkey="1")
    dog = label_class_factory(project=flat, name="dog", hotkey="2")
    label_class_factory(project=flat, name="bird", hotkey="3")
    for n in range(40):
        item_factory(project=flat, priority=1000 - n, width=32, height=32)
    user = member_of(flat, Role.ANNOTATOR, "ann")

    tree = project_factory(name="Scenes", slug="scenes", task_type=TaskType.MULTI, holdout_fraction=0.0)
    animal = label_class_factory(project=tree, name="animal", hotkey="1")
    vehicle = label_class_factory(project=tree, name="vehicle", hotkey="4")
    kitten = label_class_factory(project=tree, name="kitten", hotkey="2", parent=animal)
    label_class_factory(project=tree, name="puppy", hotkey="3", parent=animal)
    label_class_factory(project=tree, name="car", hotkey="5", parent=vehicle)
    truck = label_class_factory(project=tree, name="truck", hotkey="6", parent=vehicle)
    scene = item_factory(project=tree)
    member_of(tree, Role.ANNOTATOR, "ann")

    login("ann")
    page.goto("/p/pets/label/")
    page.wait_for_selector("#item-image")
    labeled = []
    for n in range(10):
        labeled.append(int(current_item(page)))
        press_and_wait_for_next(page, "1" if n % 2 == 0 else "2")
    assert "10" in page.locator("#mine-today").inner_text()

    # Undo brings the last image back; label it again (as dog this time), then skip the next one.
    press_and_wait_for_next(page, "z")
    assert int(current_item(page)) == labeled[-1]
    press_and_wait_for_next(page, "2")
    skipped = int(current_item(page))
    press_and_wait_for_next(page, "s")
    page.keyboard.press("?")
    assert page.locator("#shortcuts-overlay").is_visible()
    page.keyboard.press("Escape")
    screenshot("labeling-page")

    mine = Annotation.objects.filter(user=user, item__project=flat)
    assert mine.filter(skipped=False, undoes__isnull=True).count() == 11
    assert mine.filter(undoes__isnull=False).count() == 1
    assert list(mine.filter(skipped=True).values_list("item_id", flat=True)) == [skipped]
    resolved = {r.item_id: [c.pk for c in r.classes.all()] for r in ResolvedLabel.objects.filter(project=flat)}
    assert sorted(resolved) == sorted(labeled)
    assert resolved[labeled[-1]] == [dog.pk]  # the undone "dog/cat" was relabelled
    assert resolved[labeled[0]] == [cat.pk]

    # Multi-label with a taxonomy: drill into "animal" by key, toggle kitten, search for truck, submit.
    page.goto("/p/scenes/label/")
    page.wait_for_selector("#item-image")
    assert not page.locator(".class-btn[data-key='2']").is_visible()
    page.keyboard.press("1")
    assert page.locator(".class-btn[data-key='2']").is_visible()
    page.keyboard.press("2")
    page.keyboard.press("Backspace")
    assert page.locator(".class-btn[data-key='4']").is_visible()
    page.keyboard.press("/")
    page.keyboard.type("truc")
    assert "vehicle / truck" in page.locator("#search-results").inner_text()
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    press_and_wait_for_next(page, "Enter")
    chosen = Annotation.objects.get(user=user, item=scene)
    assert set(chosen.classes.values_list("pk", flat=True)) == {kitten.pk, truck.pk}

    # Grid: select 12 thumbnails (click + shift-click), label them "bird" with the keyboard.
    page.goto("/p/pets/grid/?n=24")
    tiles = page.locator("#tiles .tile")
    assert tiles.count() == 24
    tiles.nth(0).click()
    tiles.nth(11).click(modifiers=["Shift"])
    assert page.locator("#selected-count").inner_text() == "12"
    page.select_option("#grid-class", label="bird")
    screenshot("grid-mode")
    picked = [int(tiles.nth(i).get_attribute("data-id")) for i in range(12)]
    page.locator("#tiles .tile").nth(11).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Labeled 12 image(s) as bird")
    birds = Annotation.objects.filter(user=user, item__project=flat, classes__name="bird")
    assert sorted(birds.values_list("item_id", flat=True)) == sorted(picked)
    assert ResolvedLabel.objects.filter(project=flat).count() == 10 + 12

"""A class that gains a subclass is still a class an annotator can label: the server takes a label on any class of the
project (training leaves such labels out, and the model page says so), and on the labeling page the keys the settings
page shows for it open its level, which offers the class itself first ("cat (this class)", Enter) before its
subclasses. Before, that level showed only the subclass: the class could be labeled only by an Enter nothing showed,
or by the search.

Screenshot: LABELLOOP_TEST_ARTIFACTS/h49g-inner-class.png.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from labeling.models import Annotation, Role
from labeling.services.projects import label_class_create

from .conftest import CARD, next_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def settings_keys(client, project, class_id: int) -> list[str]:
    """The keys the settings page shows for the class, in order."""
    html = client.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()
    row = re.search(rf'<tr id="class-{class_id}"[^>]*>.*?<td class="label-keys">(.*?)</td>', html, re.S)
    return re.findall(r"<kbd>([^<]*)</kbd>", row.group(1))


def test_a_class_that_gained_a_subclass_is_offered_first_at_its_level_and_labeled_by_its_keys(
    page, login, screenshot, client, project_factory, item_factory, member_of
):
    # Given animal / cat and animal / dog, and then a manager adds animal / cat / kitten: cat is now a group
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0)
    animal = label_class_create(project=project, name="animal")
    cat = label_class_create(project=project, name="cat", parent=animal)
    label_class_create(project=project, name="dog", parent=animal)
    kitten = label_class_create(project=project, name="kitten", parent=cat)
    for n in range(3):
        item_factory(project=project, priority=100 - n)
    client.force_login(member_of(project, Role.MANAGER))
    keys = settings_keys(client, project, cat.pk)
    assert keys == ["1", "1"]

    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/pets/label/")
    first = page.wait_for_function(CARD).json_value()

    # When the annotator types cat's keys from the settings page
    for key in keys:
        page.keyboard.press(key)

    # Then cat's level offers cat itself first, with Enter, then its subclass
    entries = page.locator("#level-self:visible, #label-form .class-btn:visible")
    assert [" ".join(text.split()) for text in entries.all_inner_texts()] == ["Enter cat (this class)", "1 kitten"]
    screenshot("h49g-inner-class")
    # ... and choosing it labels the image "cat", not kitten
    page.locator("#level-self").click()
    second = next_card(page, first)
    assert list(Annotation.objects.filter(item_id=first).values_list("classes", flat=True)) == [cat.pk]

    # The same keys, then Enter, label the next image "cat" too; the next card starts at the top level again
    assert page.locator("#level-self").is_hidden()
    for key in [*keys, "Enter"]:
        page.keyboard.press(key)
    next_card(page, second)
    assert list(Annotation.objects.filter(item_id=second).values_list("classes", flat=True)) == [cat.pk]
    assert not Annotation.objects.filter(classes=kitten).exists()


def test_in_a_multi_label_project_the_class_at_its_own_level_is_ticked_by_a_click(
    page, login, project_factory, item_factory, member_of
):
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0, task_type="multi")
    animal = label_class_create(project=project, name="animal")
    cat = label_class_create(project=project, name="cat", parent=animal)
    kitten = label_class_create(project=project, name="kitten", parent=cat)
    for n in range(2):
        item_factory(project=project, priority=100 - n)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/pets/label/")
    first = page.wait_for_function(CARD).json_value()

    for key in ("1", "1"):
        page.keyboard.press(key)
    page.locator("#level-self").click()
    page.locator(f"#label-form .class-btn[data-id='{kitten.pk}']").click()
    page.wait_for_function("() => document.querySelector('#level-self').classList.contains('on')")
    assert page.locator(f"#label-form .class-btn[data-id='{cat.pk}'] input").is_checked()
    page.keyboard.press("Enter")

    next_card(page, first)
    labels = set(Annotation.objects.filter(item_id=first).values_list("classes", flat=True))
    assert labels == {cat.pk, kitten.pk}

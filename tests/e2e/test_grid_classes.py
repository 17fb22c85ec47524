"""The grid's class chooser at a user's size: a 150-class, four-level taxonomy (150 classes, inner ones included) in a
multi-label project and in a single-label one. A labeler finds each class by typing words of its path; Enter in the
finder picks the first match and never labels the selection; the chosen classes stay listed and named."""

from __future__ import annotations

import pytest

from labeling.models import Annotation, Role, TaskType
from labeling.services.projects import label_classes_from_paths
from tests.factories import taxonomy_paths

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def taxonomy_project(project_factory, item_factory, member_of, *, slug: str, task_type: str):
    project = project_factory(name=slug.title(), slug=slug, task_type=task_type, holdout_fraction=0.0)
    classes = label_classes_from_paths(project=project, paths=taxonomy_paths())
    for n in range(30):
        item_factory(project=project, priority=1000 - n)
    return project, classes, member_of(project, Role.ANNOTATOR, f"ann-{slug}")


def visible_options(page) -> list[str]:
    return page.eval_on_selector_all("#grid-class option", "os => os.filter(o => !o.hidden).map(o => o.dataset.path)")


def test_a_labeler_finds_two_classes_among_150_and_labels_a_selection_with_both(
    page, login, screenshot, project_factory, item_factory, member_of
):
    # Given a multi-label project with the 150-leaf taxonomy and 30 unlabeled images
    project, classes, user = taxonomy_project(
        project_factory, item_factory, member_of, slug="atlas", task_type=TaskType.MULTI
    )
    assert len(classes) == 150
    login(user.username)
    page.goto(f"/p/{project.slug}/grid/?n=24")
    tiles = page.locator("#tiles .tile")
    tiles.nth(0).click()
    tiles.nth(2).click(modifiers=["Shift"])
    picked = [int(tiles.nth(i).get_attribute("data-id")) for i in range(3)]

    # When she presses "/" and types words of a deep path, in another order
    page.locator("#tiles .tile").nth(2).focus()
    page.keyboard.press("/")
    page.keyboard.type("three red anim")
    # Then the list narrows to that class
    assert visible_options(page) == ["animals / wild / red / three"]
    # ... and Enter adds it without labeling anything
    page.keyboard.press("Enter")
    assert Annotation.objects.count() == 0
    assert page.locator("#grid-chosen").inner_text() == "Chosen: animals / wild / red / three"
    # When she finds a second class (accents and case ignored) and adds it too
    page.keyboard.type("TRANSPORT farm")
    assert visible_options(page) == ["animals / wild / red / three", "transport / farm"]  # the chosen one stays listed
    page.keyboard.press("Enter")
    screenshot("grid-find-classes")
    assert page.locator("#grid-chosen").inner_text() == "Chosen: animals / wild / red / three · transport / farm"
    assert len(visible_options(page)) == 150  # the finder is empty again: every class is listed
    # ... and a word that matches nothing leaves the choice as it is
    page.keyboard.type("zzz")
    page.keyboard.press("Enter")
    assert page.locator("#grid-chosen").inner_text() == "Chosen: animals / wild / red / three · transport / farm"
    page.keyboard.press("Escape")

    # When she labels the selection from the grid
    page.locator("#tiles .tile").nth(2).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Labeled 3 images")

    # Then the three images carry exactly those two classes
    wanted = {classes["animals/wild/red/three"].pk, classes["transport/farm"].pk}
    made = Annotation.objects.filter(user=user)
    assert sorted(made.values_list("item_id", flat=True).distinct()) == sorted(picked)
    for annotation in made:
        assert set(annotation.classes.values_list("pk", flat=True)) == wanted


def test_in_a_single_label_project_the_finder_chooses_the_class(page, login, project_factory, item_factory, member_of):
    project, classes, user = taxonomy_project(
        project_factory, item_factory, member_of, slug="atlas-single", task_type=TaskType.SINGLE
    )
    login(user.username)
    page.goto(f"/p/{project.slug}/grid/?n=24")
    page.locator("#tiles .tile").nth(0).click()
    page.keyboard.press("/")
    page.keyboard.type("kitchen wild")
    page.keyboard.press("Enter")
    assert page.eval_on_selector("#grid-class", "s => s.selectedOptions[0].dataset.path") == "kitchen / wild"
    assert Annotation.objects.count() == 0
    page.locator("#tiles .tile").nth(0).focus()
    page.keyboard.press("Enter")
    # ... and the message names the class by its path: this taxonomy has 22 classes called "wild"
    page.wait_for_selector("text=Labeled 1 image as kitchen / wild")
    (annotation,) = Annotation.objects.filter(user=user)
    assert list(annotation.classes.values_list("pk", flat=True)) == [classes["kitchen/wild"].pk]


def test_keys_typed_before_the_grid_script_runs_label_nothing(page, login, project_factory, item_factory, member_of):
    # Given a labeler on the grid whose script has not arrived yet (held back here; on a slow line it comes last)
    project, _, user = taxonomy_project(
        project_factory, item_factory, member_of, slug="atlas-early", task_type=TaskType.MULTI
    )
    login(user.username)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.route("**/js/grid.js*", lambda route: route.abort())
    page.goto(f"/p/{project.slug}/grid/?n=24")

    # When she types ahead as she would on a loaded grid: all, find a class, Enter to label, n for "not"
    for key in ("a", "/", "t", "r", "Enter", "n", "Enter"):
        page.keyboard.press(key)

    # Then nothing was sent, nothing labeled, nothing selected
    assert posts == []
    assert Annotation.objects.count() == 0
    assert page.eval_on_selector_all("#tiles input:checked", "els => els.length") == 0

    # When the script arrives, nothing typed before is replayed, and the grid answers her keys from then on
    page.unroute("**/js/grid.js*")
    page.add_script_tag(url="/static/js/grid.js")
    assert page.eval_on_selector_all("#tiles input:checked", "els => els.length") == 0
    assert posts == []
    page.locator("#tiles .tile").nth(0).click()
    page.keyboard.press("a")
    assert page.locator("#selected-count").inner_text() == "24"
    assert Annotation.objects.count() == 0

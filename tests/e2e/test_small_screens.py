"""On a phone (390 x 844) and a tablet in portrait (768 x 1024): no page is wider than the screen (a wide table
scrolls inside its card, a chart scales down), and on the labeling page the classes sit below the image, not under
it, so a tap on a class labels the image on screen."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Annotation
from tests.factories import page_urls

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SCREENS = {"phone": (390, 844), "tablet": (768, 1024)}

# The elements that stick out past the right edge of the screen, outermost first (what a user scrolls sideways for).
PAST_THE_EDGE = """() => { const w = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect(), p = el.parentElement && el.parentElement.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1 && !(p && p.right > w + 1))
      out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className.baseVal ?? el.className}`);
  }
  return {scroll: document.documentElement.scrollWidth - w, out: out.slice(0, 5)}; }"""


def overlaps(a: dict, b: dict) -> bool:
    apart_x = a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
    apart_y = a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
    return not (apart_x or apart_y)


@pytest.mark.parametrize("screen", SCREENS)
def test_no_page_is_wider_than_a_phone_or_tablet_screen(page, login, busy_project, screenshot, screen):
    project, manager = busy_project
    page.set_viewport_size(dict(zip(("width", "height"), SCREENS[screen], strict=True)))
    login(manager.username)
    urls = {**page_urls(project), "monitoring": reverse("serving:monitoring", args=[project.slug]),
            "serving keys": reverse("serving:keys", args=[project.slug])}  # fmt: skip
    wide = {}
    for name, url in urls.items():
        assert page.goto(url).status == 200, name
        page.wait_for_load_state("load")
        found = page.evaluate(PAST_THE_EDGE)
        if found["scroll"] > 0:
            wide[name] = found
    screenshot(f"small-screen-{screen}-model")
    assert not wide, f"pages wider than the {screen} screen ({SCREENS[screen][0]} px): {wide}"


@pytest.mark.parametrize("screen", SCREENS)
def test_on_a_phone_or_tablet_the_classes_sit_below_the_image_and_a_tap_labels_it(
    page, login, busy_project, screenshot, screen
):
    project, _ = busy_project
    page.set_viewport_size(dict(zip(("width", "height"), SCREENS[screen], strict=True)))
    login("ann")
    page.goto(reverse("labeling:label", args=[project.slug]))
    page.wait_for_function("() => document.getElementById('item-card')?.dataset.ready === '1'")
    item = page.locator("#item-card").get_attribute("data-item")
    screenshot(f"small-screen-{screen}-label")
    image = page.locator("#item-image").bounding_box()
    buttons = page.locator("#label-form .class-btn:visible")
    boxes = [buttons.nth(i).bounding_box() for i in range(buttons.count())]
    assert boxes
    assert image["width"] > 0.4 * SCREENS[screen][0], image  # a 32 px image, scaled up to be seen
    assert image["x"] >= 0, image
    assert image["x"] + image["width"] <= SCREENS[screen][0] + 1, image
    assert not [b for b in boxes if overlaps(image, b)], f"class buttons under the image {image}: {boxes}"

    page.locator("#label-form .class-btn:visible", has_text="yield").first.click()
    page.wait_for_function(f"() => document.getElementById('item-card')?.dataset.item !== '{item}'")
    labeled = Annotation.objects.get(item_id=int(item), user__username="ann")
    assert [c.name for c in labeled.classes.all()] == ["yield"]

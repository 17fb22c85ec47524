"""h59 P1: a review card shows a transparent image as the labeling page does, in headless Chromium: white line art
on a dark checkerboard (the model's rule for light drawings), black line art on a light one, and `b` cycles the
labeling page's backgrounds (checkerboard, light, dark), named in the shortcut line and never a verdict."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image, ImageDraw

from labeling.models import Review, Role
from labeling.services.annotations import annotation_create
from labeling.services.projects import label_class_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

LINES = range(20, 240, 60)  # x of the drawing's vertical lines, in its 240 px


def line_art_png(ink: tuple[int, int, int]) -> bytes:
    """Vertical lines of `ink` on a fully transparent 240 px square, as clip-art PNGs come."""
    image = Image.new("RGBA", (240, 240), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for x in LINES:
        draw.line([(x, 0), (x, 240)], fill=(*ink, 255), width=8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def luminance(page) -> tuple[float, float]:
    """Mean luminance (0-255) of the card's image as drawn where it is transparent, and on its lines (its 1 px frame
    left out)."""
    shot = Image.open(io.BytesIO(page.locator("#review-image").screenshot())).convert("L")
    shot = shot.crop((2, 2, shot.width - 2, shot.height - 2))
    gaps, lines = [], []
    for x in range(shot.width):
        source_x = (x + 0.5) * 240 / shot.width
        column = [shot.getpixel((x, y)) for y in range(0, shot.height, 4)]
        if any(abs(source_x - line) < 2 for line in LINES):
            lines += column
        elif all(abs(source_x - line) > 10 for line in LINES):
            gaps += column
    return sum(gaps) / len(gaps), sum(lines) / len(lines)


def until(page, check, what: str, timeout: float = 5.0):
    """`check(luminance(page))` once it holds (the light test runs once the image has loaded), else fail with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        gaps, lines = luminance(page)
        if check(gaps, lines) or time.monotonic() > deadline:
            assert check(gaps, lines), f"{what} (transparent areas {gaps:.0f}, lines {lines:.0f} of 255)"
            return gaps, lines
        page.wait_for_timeout(100)


def open_review_card(page, login, project_factory, member_of, ink) -> None:
    """rita on the review page, its one card an audit of `ann`'s label of one transparent line-art PNG."""
    from labeling.services.imports import item_create_from_bytes  # a module being split: imported when used

    project = project_factory(name="Icons", slug="icons", holdout_fraction=0.0, review_sample_rate=1.0)
    icon = label_class_create(project=project, name="icon")
    item = item_create_from_bytes(project=project, name="lines.png", data=line_art_png(ink))
    annotation_create(item=item, user=member_of(project, Role.ANNOTATOR, "ann"), class_ids=[icon.pk])
    member_of(project, Role.REVIEWER, "rita")
    login("rita")
    page.goto("/p/icons/review/")
    page.wait_for_function(
        "() => { const c = document.getElementById('review-card'), img = document.getElementById('review-image');"
        " return c && c.dataset.ready === '1' && img && img.complete && img.naturalWidth > 0; }"
    )


def bg(page) -> str | None:
    return page.locator(".review-page").get_attribute("data-bg")


def test_white_line_art_on_a_review_card_is_drawn_on_a_dark_checkerboard_and_b_cycles_the_backgrounds(
    page, login, screenshot, project_factory, member_of
):
    # Given a review card of white lines on transparency (on the card's near-white they all but vanished)
    open_review_card(page, login, project_factory, member_of, ink=(255, 255, 255))

    # Then the checkerboard behind it is the dark one, as on the labeling page and in the model's pixels
    until(page, lambda gaps, lines: gaps < 70 and lines > 200, "white lines drawn on a light background")
    assert bg(page) == "checker"
    screenshot("review-transparent-white")
    shortcuts = page.inner_text(".shortcuts")
    assert "b background: checkerboard" in shortcuts

    # When the reviewer presses b: light, then dark, then the checkerboard again, each named in the shortcut line
    page.keyboard.press("b")
    assert bg(page) == "light"
    until(page, lambda gaps, lines: gaps > 230, "the light background is not white")
    assert "b background: light" in page.inner_text(".shortcuts")
    page.keyboard.press("b")
    assert bg(page) == "dark"
    until(page, lambda gaps, lines: gaps < 60, "the dark background is not dark")
    assert "b background: dark" in page.inner_text(".shortcuts")
    page.keyboard.press("b")
    assert bg(page) == "checker"
    until(page, lambda gaps, lines: gaps < 70, "the checkerboard of a light drawing is not the dark one")
    assert not Review.objects.exists()  # b is never a verdict


def test_black_line_art_on_a_review_card_is_drawn_on_a_light_checkerboard_and_b_is_kept_across_pages(
    page, login, project_factory, member_of
):
    open_review_card(page, login, project_factory, member_of, ink=(0, 0, 0))
    assert bg(page) == "checker"
    until(page, lambda gaps, lines: gaps > 180 and lines < 60, "black lines drawn on a dark background")

    # b while correcting switches the background and leaves the correction open (b is no class's key)
    page.keyboard.press("c")
    page.locator("#correct-classes").wait_for()
    page.keyboard.press("b")
    assert bg(page) == "light"
    assert page.locator("#correct-classes").is_visible()

    # The choice is the user's, as the labeling page's: it holds after a reload and there
    page.reload()
    page.wait_for_function("() => document.querySelector('.review-page').dataset.bg === 'light'")
    page.goto("/p/icons/label/")
    page.wait_for_function("() => document.querySelector('.label-page').dataset.bg === 'light'")
    assert not Review.objects.exists()

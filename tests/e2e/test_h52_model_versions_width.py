"""The model page's versions table on a 1280 px screen with a held-back version (tester h52 P3): the long "Not made
active: ..." reason wraps in its cell instead of widening the table past its card and the page, and "make active" is
a clear button apart from the reason (it read "...is below v1's 1.000make active", pale blue on white)."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.models import Role
from training.ml.evaluate import evaluate
from training.models import ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

NAMES = [str(d) for d in range(10)]
REASON = "not made active: holdout accuracy 0.853 (0.70 to 0.94, n 34) is below v1's 1.000"
# The WCAG contrast of an element's text colour on white.
CONTRAST = """el => {
  const lum = c => { const v = c / 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const [r, g, b] = getComputedStyle(el).color.match(/\\d+/g).map(Number);
  return 1.05 / (0.2126 * lum(r) + 0.7152 * lum(g) + 0.0722 * lum(b) + 0.05);
}"""


def metrics(n: int, right: int) -> dict:
    rng = np.random.default_rng(n)
    y = [k % 10 for k in range(n)]
    pred = [t if k < right else (t + 1) % 10 for k, t in enumerate(y)]
    probs = rng.uniform(0.0, 0.05, size=(n, 10))
    probs[np.arange(n), pred] = 0.9
    return evaluate(probs, y, NAMES)


def test_a_held_back_versions_reason_wraps_inside_the_card_with_its_button_apart(
    page, login, project_factory, label_class_factory, member_of
):
    # Given v1 active (2 holdout items) and v2 held back with the long reason the tester saw
    project = project_factory(name="Digits")
    ids = [label_class_factory(project=project, name=n).pk for n in NAMES]
    member_of(project, Role.ML_ENGINEER, "mle")
    for number, n, right, labels, extra in ((1, 2, 2, 50, {}), (2, 34, 29, 400, {"not_made_active": REASON})):
        ModelVersion.objects.create(
            project=project, number=number, artifact_path="x", architecture="tf_efficientnet_lite0", class_ids=ids,
            metrics={**metrics(n, right), **extra}, label_count=labels, active=number == 1,
            dataset_hash=f"{number:02d}e047243d4bf" * 4,
        )  # fmt: skip

    # When the ML engineer opens the model page on a 1280 px wide screen
    page.set_viewport_size({"width": 1280, "height": 900})
    login("mle")
    page.goto(f"/p/{project.slug}/model/")

    # Then the page does not scroll sideways, and the versions table ends inside its card
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    table = page.locator("table.versions")
    card = page.locator("#model-live .card", has=table)
    assert table.evaluate("el => el.getBoundingClientRect().right") <= card.evaluate(
        "el => el.getBoundingClientRect().right - el.clientLeft"
    )
    assert page.locator("#version-1 td:nth-child(10)").is_visible()  # Created, the last column

    # And v2's reason is there in full, wrapped on several lines
    cell = page.locator("#version-2 td:nth-child(2)")
    reason = cell.locator(".not-made-active")
    assert reason.inner_text() == "N" + REASON[1:]
    assert reason.evaluate("el => el.getClientRects()[0].height") > 2 * 15

    # And "make active" is a visible button, clear of the reason's text, that does not read as disabled
    button = cell.get_by_role("button", name="make active")
    assert button.is_visible()
    assert button.is_enabled()
    text, box = reason.bounding_box(), button.bounding_box()
    assert box["y"] >= text["y"] + text["height"] + 2 or box["x"] >= text["x"] + text["width"] + 2
    assert button.evaluate(CONTRAST) >= 4.5
    assert button.evaluate("el => parseFloat(getComputedStyle(el).borderTopWidth)") >= 1

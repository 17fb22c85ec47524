"""In a browser: the review card of a 3000 x 30 banner draws the image and its heatmap at a readable height (they
were 782 x 10 px), the overlay filling the image's box; and an empty heatmap shows its note on the card."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from tests.training.explain_helpers import explained_project
from training.ml.explain import overlay_png
from training.models import Explanation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def banner(project, item_factory, width: int = 3000, height: int = 30):
    item = item_factory(project=project, width=width, height=height)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(buffer, "PNG")
    item.file.save(item.original_name, ContentFile(buffer.getvalue()), save=True)
    return item


def explained(version, item, heat: np.ndarray) -> Explanation:
    png = overlay_png(heat, item.width, item.height, squash_aspect=2.0)
    key = default_storage.save(f"explanations/test/{item.pk}-1.png", ContentFile(png))
    return Explanation.objects.create(
        model_version=version, item=item, class_index=1, class_name="dog", status="done", png=key, probability=0.2
    )


def test_a_3000_by_30_banners_heatmap_is_drawn_at_a_readable_height(
    page, login, project_factory, label_class_factory, item_factory, member_of, audit_card
):
    project, classes, _items, version, annotator, reviewer = explained_project(
        project_factory, label_class_factory, item_factory, member_of
    )
    wide = banner(project, item_factory)
    heat = np.zeros((64, 64), dtype=np.float32)
    heat[:, 40:50] = 1.0
    explained(version, wide, heat)
    audit_card(project, wide, annotator, classes[1])

    login(reviewer.username)
    page.goto(f"/p/{project.slug}/review/")
    overlay = page.locator("#review-explain img.explain-overlay")
    overlay.wait_for(state="visible")
    page.wait_for_function("document.getElementById('review-image').complete")

    image_box = page.locator("#review-image").bounding_box()
    overlay_box = overlay.bounding_box()
    assert image_box["height"] >= 90  # was 10 px
    assert abs(overlay_box["height"] - image_box["height"]) <= 3
    assert overlay.evaluate("el => getComputedStyle(el).objectFit") == "fill"  # drawn over the whole stretched box


def test_an_empty_heatmap_shows_its_note_on_the_card(
    page, login, project_factory, label_class_factory, item_factory, member_of, audit_card
):
    project, classes, items, version, annotator, reviewer = explained_project(
        project_factory, label_class_factory, item_factory, member_of
    )
    items[0].predictions.all().delete()
    explained(version, items[0], np.zeros((64, 64), dtype=np.float32))
    audit_card(project, items[0], annotator, classes[1])

    login(reviewer.username)
    page.goto(f"/p/{project.slug}/review/")
    note = page.locator("#review-explain .explain-empty")
    note.wait_for(state="visible")
    assert note.inner_text() == f"v{version.number} sees no evidence of dog in this image"

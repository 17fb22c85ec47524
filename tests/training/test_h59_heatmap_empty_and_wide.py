"""A heatmap with no evidence and the heatmap of a very elongated image, fetched as the review card fetches them:
an all-zero map says in words that the model sees no evidence of the class (its overlay would draw nothing, which
looked like a heatmap that did not load), and a 3000 x 30 banner's overlay keeps enough rows to be read once the
card draws the image taller (the browser half: tests/labeling/test_h59_wide_heatmap_browser.py)."""

from __future__ import annotations

import html
import io
import re

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from labeling.models import ReviewTask, ReviewTaskReason
from labeling.services.annotations import annotation_create
from tests.training.explain_helpers import explained_project
from training.ml.explain import overlay_png
from training.models import Explanation, ExplanationStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def zoo(project_factory, label_class_factory, item_factory, member_of):
    return explained_project(project_factory, label_class_factory, item_factory, member_of)


def done_explanation(version, item, class_index: int, heat: np.ndarray, *, name: str) -> Explanation:
    """A finished explanation whose stored PNG is the overlay of `heat` (what the worker saves)."""
    png = overlay_png(heat, item.width, item.height, squash_aspect=2.0)
    key = default_storage.save(f"explanations/test/{item.pk}-{class_index}.png", ContentFile(png))
    return Explanation.objects.create(
        model_version=version,
        item=item,
        class_index=class_index,
        class_name=name,
        status=ExplanationStatus.DONE,
        png=key,
        probability=0.004,
    )


def card_fragment(client, project, item, annotator, cls) -> str:
    """The review card of `item` labeled `cls`, then its heatmap fragment fetched from the URL the card names."""
    annotation = annotation_create(item=item, user=annotator, class_ids=[cls.pk])
    ReviewTask.objects.all().delete()
    ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.SAMPLE)
    card = html.unescape(client.get(reverse("labeling:review", args=[project.slug])).content.decode())
    url = re.search(r'<div class="explain" data-explain="loading" hx-get="([^"]+)"', card).group(1)
    return html.unescape(client.get(url).content.decode())


def test_an_all_zero_heatmap_says_the_model_sees_no_evidence(zoo, client):
    # Given a finished heatmap of "dog" for an item that is zero everywhere (no positive evidence)
    project, classes, items, version, annotator, reviewer = zoo
    items[0].predictions.all().delete()
    done_explanation(version, items[0], 1, np.zeros((64, 64), dtype=np.float32), name="dog")
    client.force_login(reviewer)

    # When the review card of the item labeled "dog" fetches its heatmap
    fragment = card_fragment(client, project, items[0], annotator, classes[1])

    # Then a visible note says so where the heatmap would be, and no empty overlay is drawn
    assert f"v{version.number} sees no evidence of dog in this image</span>" in fragment
    assert "explain-overlay" not in fragment


def test_a_heatmap_with_evidence_still_shows_its_overlay(zoo, client):
    project, classes, items, version, annotator, reviewer = zoo
    items[0].predictions.all().delete()
    heat = np.zeros((64, 64), dtype=np.float32)
    heat[20:40, 20:40] = 1.0
    row = done_explanation(version, items[0], 1, heat, name="dog")
    client.force_login(reviewer)

    fragment = card_fragment(client, project, items[0], annotator, classes[1])

    assert "sees no evidence" not in fragment
    assert reverse("training:explanation_png", args=[project.slug, row.pk]) in fragment


def test_a_3000_by_30_images_heatmap_keeps_rows_enough_to_read(zoo, item_factory, client):
    # Given a 3000 x 30 banner labeled "dog" whose heatmap the worker computed
    project, classes, _items, version, annotator, reviewer = zoo
    wide = item_factory(project=project, width=3000, height=30)
    heat = np.zeros((64, 64), dtype=np.float32)
    heat[:, 40:50] = 1.0  # evidence in a band of the squashed square: a stretch of the banner, its full height
    row = done_explanation(version, wide, 1, heat, name="dog")
    client.force_login(reviewer)

    # When the card fetches the heatmap and then its PNG
    fragment = card_fragment(client, project, wide, annotator, classes[1])
    png_url = reverse("training:explanation_png", args=[project.slug, row.pk])
    assert png_url in fragment
    image = Image.open(io.BytesIO(client.get(png_url).content))

    # Then the overlay has the banner's shape with at least its 30 rows (it was 256 x 3), and the heat is there
    assert image.size == (3000, 30)
    alpha = np.asarray(image.getchannel("A"))
    assert alpha.max() > 0
    assert (alpha[:, 1900:2300] > 0).all()

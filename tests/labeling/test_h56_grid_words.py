"""Grid mode's flash (tester h56 P10): plain counts ("3 images", "1 image"), no unexplained "(0.00 s)", and each
image labeled records its share of the time since the grid was shown."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Annotation
from tests.factories import page_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def grid(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(slug="shapes", holdout_fraction=0.0, annotations_per_item=2)
    star = label_class_factory(project=project, name="star")
    items = [item_factory(project=project) for _ in range(4)]
    client = page_client(member_of(project))
    return project, star, items, client


def _apply(client, star, items, **extra):
    data = {"item_ids": [i.pk for i in items], "class_id": star.pk, "action": "label", **extra}
    return client.post(reverse("labeling:grid_apply", args=["shapes"]), data, follow=True).content.decode()


def test_the_grid_flash_counts_images_in_plain_words_and_shows_no_timing(grid):
    # Given an annotator on the grid of a project with four unlabeled images
    _project, star, items, client = grid
    assert "Image" in client.get(reverse("labeling:grid", args=["shapes"])).content.decode()

    # When they label three of them as star, 6 s after the grid was shown
    html = _apply(client, star, items[:3], ms="6000")

    # Then the flash says how many in plain words, with no time in it
    assert "Labeled 3 images as star." in html
    assert "image(s)" not in html
    assert " s)." not in html
    # And each label records its share of the 6 s (the overview's seconds per label read them)
    assert sorted(Annotation.objects.values_list("seconds_spent", flat=True)) == [2.0, 2.0, 2.0]

    # When they label the last one alone
    html = _apply(client, star, items[3:], ms="1500")

    # Then the flash says "1 image"
    assert "Labeled 1 image as star." in html
    assert Annotation.objects.get(item=items[3]).seconds_spent == 1.5


def test_the_grid_flash_says_1_image_marked_not_and_1_was_already_taken(grid):
    _project, star, items, client = grid
    html = _apply(client, star, items[:1], action="not")
    assert "1 image marked not star; hidden from this view." in html
    assert "1 image you marked" in client.get(reverse("labeling:grid", args=["shapes"])).content.decode()

    # An image the annotator labeled already in another tab is counted as taken, in the singular
    _apply(client, star, items[1:2])
    html = _apply(client, star, items[1:3])
    assert "Labeled 1 image as star; 1 was already taken." in html

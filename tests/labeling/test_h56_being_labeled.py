"""The overview's "being labeled now" counts the images on annotators' cards, not the ones their pages reserved for
the next card (the labeling page leases the next item ahead, so its image is prefetched: stop 56)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from labeling.models import Item, Role
from tests.factories import page_client

pytestmark = pytest.mark.django_db


def test_two_annotators_on_the_labeling_page_are_two_images_being_labeled(
    project_factory, label_class_factory, item_factory, member_of
):
    # Given two annotators with the labeling page open on a project of ten images
    project = project_factory(slug="shapes", holdout_fraction=0.0)
    label_class_factory(project=project, name="circle", hotkey="1")
    for n in range(10):
        item_factory(project=project, priority=10 - n)
    for name in ("ann1", "ann2"):
        page_client(member_of(project, Role.ANNOTATOR, name)).get(reverse("labeling:label", args=["shapes"]))
    assert Item.objects.filter(project=project, lease_user__isnull=False).count() == 4  # each card's and its next

    # When the manager opens the overview, it says two images are being labeled
    html = page_client(member_of(project, Role.MANAGER, "pm")).get(reverse("labeling:project_detail", args=["shapes"]))
    assert re.search(r'id="stat-leased">(\d+)</b>', html.content.decode()).group(1) == "2"

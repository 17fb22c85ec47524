"""What the server does with a label given after the annotator's hold (lease) on the image ran out, as the labeling
page tells them (static/js/lease.js): it counts unless another annotator has taken the image meanwhile; then it is
refused (409) with the next image and the reason. And the page carries the hold the server gave, for its countdown.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Annotation, Item, Role
from labeling.services.queue import item_claim_next

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(project_factory, label_class_factory, item_factory, member_of):
    """ "ann" holds the first of 3 images of a project, and the hold has run out a second ago.
    Returns (project, ann's client, the item, the class)."""
    project = project_factory(holdout_fraction=0.0)
    cat = label_class_factory(project=project, name="cat", hotkey="1")
    for n in range(3):
        item_factory(project=project, priority=10 - n)
    ann = member_of(project, Role.ANNOTATOR, "ann")
    client = Client()
    client.force_login(ann)
    item = item_claim_next(project=project, user=ann)
    Item.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    return project, client, item, cat


def post_label(client, project, item, cat):
    url = reverse("labeling:label_submit", args=[project.slug, item.pk])
    return client.post(url, {"class_ids": [cat.pk]}, HTTP_HX_REQUEST="true")


def test_the_labeling_page_carries_the_hold_the_server_gave(client, project_factory, item_factory, member_of, settings):
    settings.LABELLOOP_LEASE_SECONDS = 90
    project = project_factory()
    item_factory(project=project)
    client.force_login(member_of(project, Role.ANNOTATOR, "ann"))
    html = client.get(reverse("labeling:label", args=[project.slug])).content.decode()
    expires = float(re.search(r'data-lease-expires="([\d.]+)"', html)[1])
    now = float(re.search(r'data-server-now="([\d.]+)"', html)[1])
    assert expires - now == pytest.approx(90, abs=1)
    assert 'id="lease-note"' in html


def test_a_label_after_the_hold_ran_out_counts_when_no_one_took_the_image(held):
    project, client, item, cat = held
    response = post_label(client, project, item, cat)
    assert response.status_code == 200
    assert list(Annotation.objects.filter(item=item).values_list("user__username", "classes__name")) == [("ann", "cat")]
    assert f'data-item="{item.pk}"' not in response.content.decode()  # the next image


def test_a_label_after_the_hold_ran_out_is_refused_when_another_annotator_took_the_image(held, member_of):
    project, client, item, cat = held
    bob = member_of(project, Role.ANNOTATOR, "bob")
    assert item_claim_next(project=project, user=bob).pk == item.pk

    response = post_label(client, project, item, cat)

    assert response.status_code == 409
    html = response.content.decode()
    assert "Another annotator is working on this item." in html
    assert re.search(r'data-item="(\d+)"', html)[1] != str(item.pk)  # the next image, the page says why
    assert not Annotation.objects.filter(item=item).exists()

"""The labeling card's "N items still open": counted on every card while the project has few open items, and at
most once per OPEN_COUNT_SECONDS (per process) from OPEN_COUNT_EXACT_FROM on, where the count scans every open item
(25 ms of a 45 ms card at 100,000 items on PostgreSQL: bench/labeling_latency.py --via page)."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.models import Role
from labeling.selectors import queue as queue_selectors
from tests.factories import page_client

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def annotator_on(project_factory, label_class_factory, item_factory, member_of):
    """annotator_on(n_items) -> (page client, project, circle, items) of a single-label project with n open items."""

    def make(n_items: int):
        project = project_factory(slug="shapes", holdout_fraction=0.0)
        circle = label_class_factory(project=project, name="circle", hotkey="1")
        items = [item_factory(project=project, priority=100 - n) for n in range(n_items)]
        return page_client(member_of(project, Role.ANNOTATOR, "ann")), project, circle, items

    cache.clear()
    yield make
    cache.clear()


def label_and_read(client, item, circle) -> tuple[int, int]:
    """Label the item on the page; (the open count the next card shows, how many open-item counts it ran)."""
    with CaptureQueriesContext(connection) as queries:
        html = client.post(
            reverse("labeling:label_submit", args=["shapes", item.pk]), {"class_ids": circle.pk}, **HTMX
        ).content.decode()
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"] and '"state" IN' in q["sql"]]
    return int(re.search(r'id="remaining">(\d+)</b>', html).group(1)), len(counts)


def test_a_large_project_counts_its_open_items_once_in_a_while_not_on_every_card(annotator_on, monkeypatch):
    # Given a project at the size where counting is cached (lowered to 5 open items for the test)
    monkeypatch.setattr(queue_selectors, "OPEN_COUNT_EXACT_FROM", 5)
    client, _, circle, items = annotator_on(8)
    first = client.get(reverse("labeling:label", args=["shapes"])).content.decode()
    assert 'id="remaining">8</b>' in first

    # When the annotator labels three images in a row
    shown = [label_and_read(client, item, circle) for item in items[:3]]

    # Then no card after the first counted again: each shows the count of the first (off by the labels since)
    assert shown == [(8, 0), (8, 0), (8, 0)]
    # ... and once the count has expired the next card counts anew
    cache.clear()
    assert label_and_read(client, items[3], circle) == (4, 1)


def test_a_small_project_counts_down_on_every_card(annotator_on):
    # Given a project with three open images, under the size where counting is cached
    client, _, circle, items = annotator_on(3)
    client.get(reverse("labeling:label", args=["shapes"]))

    # When the annotator labels them one by one, each card shows the exact count
    assert [label_and_read(client, item, circle)[0] for item in items] == [2, 1, 0]

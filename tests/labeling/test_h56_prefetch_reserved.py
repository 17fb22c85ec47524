"""The labeling page's image prefetch names the item the annotator's next card will show, however many annotators
share the project: the card reserves that item for them (a lease, chosen by the claim's own rules), so the image the
browser loaded ahead is the next card's. Before, the card peeked at the head of the shared queue, which the other
annotators claimed first (bench/labeling_latency.py --via page: prefetch_hit_rate 0.03-0.06 with 8 annotators).
"""

from __future__ import annotations

import random
import re
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from labeling.models import Annotation, Item, ItemState, Split
from tests.factories import api_client, bulk_items, page_client

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
CARD = re.compile(r'<section id="item-card"[^>]*\sdata-item="(\d*)"')
PREFETCH = re.compile(r'<link rel="prefetch"[^>]*class="prefetch"[^>]*href="[^"]*/media/(\d+)/thumb/')


def card(response) -> tuple[int | None, list[int]]:
    """What the page shows: the card's item (None: nothing left) and the items whose images it prefetches, in order."""
    assert response.status_code == 200, response.content[:300]
    html = response.content.decode()
    found = CARD.search(html)
    item = int(found.group(1)) if found and found.group(1) else None
    return item, [int(i) for i in PREFETCH.findall(html)]


def open_page(client, project):
    return card(client.get(reverse("labeling:label", args=[project.slug])))


def label(client, project, item_id: int, class_id: int):
    url = reverse("labeling:label_submit", args=[project.slug, item_id])
    return card(client.post(url, {"class_ids": class_id, "ms": "900"}, **HTMX))


def skip(client, project, item_id: int):
    return card(client.post(reverse("labeling:label_skip", args=[project.slug, item_id]), {"ms": "900"}, **HTMX))


@pytest.fixture
def team(project_factory, label_class_factory, member_of):
    """A project of 30 train items (distinct priorities) and two annotators, each with the page open."""
    project = project_factory(holdout_fraction=0.0)
    cat = label_class_factory(project=project, name="cat")
    bulk_items(project, 30)
    for rank, item in enumerate(Item.objects.filter(project=project).order_by("pk")):
        Item.objects.filter(pk=item.pk).update(priority=1.0 - rank / 100)
    a, b = member_of(project, username="ann"), member_of(project, username="bob")
    return {"project": project, "cat": cat.pk, "a": page_client(a), "b": page_client(b), "users": (a, b)}


def test_the_image_a_card_prefetches_is_the_next_card_even_when_another_annotator_claims_in_between(team):
    project, a, b, cat = team["project"], team["a"], team["b"], team["cat"]
    # Given: A's page shows an item and prefetches the image of another
    shown, ahead = open_page(a, project)
    b_shown, _ = open_page(b, project)
    for _ in range(8):
        assert ahead, "the card prefetches an image"
        # When: B labels (claiming the head of the queue) before A labels
        b_shown, _ = label(b, project, b_shown, cat)
        nxt, next_ahead = label(a, project, shown, cat)
        # Then: A's next card is the image A's page had already loaded, and B never got it
        assert nxt == ahead[0]
        assert nxt != b_shown
        shown, ahead = nxt, next_ahead
    # Every label was saved once, by the annotator whose card showed it.
    assert Annotation.objects.filter(item__project=project).count() == 16
    assert Item.objects.filter(project=project, state=ItemState.LABELED).count() == 16


def test_a_reload_shows_the_same_item_and_the_reserved_one_comes_after_it(team, monkeypatch):
    project, a, cat = team["project"], team["a"], team["cat"]
    shown, ahead = open_page(a, project)
    # When: time passes (the reload refreshes the shown item's lease past the reservation's old end), the page is
    # reloaded twice and the API's /next/ is asked twice
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=30))
    assert open_page(a, project) == (shown, ahead)
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=60))
    assert open_page(a, project) == (shown, ahead)
    api = api_client(team["users"][0])
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=90))
    assert [api.get(f"/api/projects/{project.slug}/next/").json()["item"]["id"] for _ in range(2)] == [shown, shown]
    assert open_page(a, project) == (shown, ahead)
    # Then: labeling it brings the reserved item, as the page had prefetched
    assert label(a, project, shown, cat)[0] == ahead[0]


def test_after_an_undo_a_reload_shows_the_undone_item_and_its_prefetch_is_the_next_card(team):
    project, a, cat = team["project"], team["a"], team["cat"]
    first, _ = open_page(a, project)
    label(a, project, first, cat)
    # When: A undoes the label of the first item (the card shows it again) and reloads the page
    undone = Annotation.objects.get(item_id=first)
    url = reverse("labeling:label_undo", args=[project.slug])
    shown, ahead = card(a.post(url, {"annotation": undone.pk}, **HTMX))
    assert shown == first
    # Then: the reload shows the undone item too (not the one A had on the card before), and labeling it brings the
    # image the page prefetched
    assert open_page(a, project) == (first, ahead)
    assert label(a, project, first, cat)[0] == ahead[0]


def test_a_skip_releases_only_the_skipped_item_and_skips_come_back_last(
    project_factory, label_class_factory, member_of
):
    project = project_factory(holdout_fraction=0.0)
    cat = label_class_factory(project=project, name="cat").pk
    first, second = bulk_items(project, 2)
    Item.objects.filter(pk=first.pk).update(priority=2.0)
    a = page_client(member_of(project))
    assert open_page(a, project) == (first.pk, [second.pk])
    # When: A skips the first item, the next card is the reserved second; its prefetch is the skipped item (nothing
    # else is left for A), which comes back after it
    assert skip(a, project, first.pk) == (second.pk, [first.pk])
    assert Item.objects.get(pk=first.pk).lease_user_id == Item.objects.get(pk=second.pk).lease_user_id
    assert skip(a, project, second.pk) == (first.pk, [second.pk])
    assert label(a, project, first.pk, cat) == (second.pk, [])
    assert label(a, project, second.pk, cat) == (None, [])
    assert Item.objects.filter(project=project, state=ItemState.LABELED).count() == 2


def test_the_holdout_keeps_its_share_and_its_images_are_prefetched_too(
    project_factory, label_class_factory, member_of, monkeypatch
):
    project = project_factory(holdout_fraction=0.5)
    cat = label_class_factory(project=project, name="cat").pk
    items = bulk_items(project, 100)
    Item.objects.filter(pk__in=[i.pk for i in items[::2]]).update(split=Split.HOLDOUT)
    monkeypatch.setattr(random, "random", random.Random(56).random)  # the pool choice's draws, repeatable
    a, b = page_client(member_of(project)), page_client(member_of(project))
    shown, ahead = open_page(a, project)
    b_shown, _ = open_page(b, project)
    cards = [shown]
    for _ in range(39):
        b_shown, _ = label(b, project, b_shown, cat)
        nxt, next_ahead = label(a, project, shown, cat)
        assert nxt == ahead[0]
        shown, ahead = nxt, next_ahead
        cards.append(shown)
    splits = list(Item.objects.filter(pk__in=cards).values_list("split", flat=True))
    assert len(splits) == 40
    assert splits.count(Split.HOLDOUT) >= 10
    assert splits.count(Split.TRAIN) >= 10


def test_with_two_annotations_per_item_each_is_labeled_by_both_and_prefetch_still_hits(
    project_factory, label_class_factory, member_of
):
    project = project_factory(holdout_fraction=0.0, annotations_per_item=2)
    cat = label_class_factory(project=project, name="cat").pk
    bulk_items(project, 6)
    a, b = page_client(member_of(project)), page_client(member_of(project))
    shown = {"a": open_page(a, project), "b": open_page(b, project)}
    done = {"a": 0, "b": 0}
    for _ in range(20):
        for name, client in (("a", a), ("b", b)):
            item, ahead = shown[name]
            if item is None:  # nothing left for now (the other's leases hold the rest): the page is opened again
                shown[name] = open_page(client, project)
                continue
            shown[name] = label(client, project, item, cat)
            done[name] += 1
            if shown[name][0] is not None:
                assert shown[name][0] == ahead[0]
    assert done == {"a": 6, "b": 6}
    assert set(Item.objects.filter(project=project).values_list("state", "annotation_count")) == {
        (ItemState.LABELED, 2)
    }
    assert not Item.objects.filter(project=project, lease_user__isnull=False).exists()


def test_an_unused_reservation_expires_and_returns_to_the_pool(team, monkeypatch):
    project, a, b = team["project"], team["a"], team["b"]
    shown, ahead = open_page(a, project)
    # When: A leaves the page, and B opens it after A's leases have ended
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(days=1))
    # Then: B gets A's item and A's reserved item is B's next
    assert open_page(b, project) == (shown, [ahead[0], ahead[1]])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED is PostgreSQL's; SQLite serializes")
@pytest.mark.django_db(transaction=True)
def test_two_annotators_reserving_at_once_never_get_the_same_item(project_factory, label_class_factory, member_of):
    from labeling.services.queue import item_claim_next, item_reserve_next

    project = project_factory(holdout_fraction=0.0)
    bulk_items(project, 40)
    users = [member_of(project) for _ in range(8)]
    current = {u.pk: item_claim_next(project=project, user=u) for u in users}
    got, errors, start = {}, [], threading.Barrier(len(users))

    def reserve(user):
        try:
            start.wait()
            got[user.pk] = item_reserve_next(project=project, user=user, current=current[user.pk]).pk
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=reserve, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    held = [i.pk for i in current.values()] + list(got.values())
    assert len(held) == len(set(held)) == 16
    assert Item.objects.filter(pk__in=list(got.values()), lease_user__isnull=False).count() == 8


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's; SQLite serializes")
@pytest.mark.django_db(transaction=True)
def test_a_reload_during_a_priority_rewrite_waits_for_it_and_neither_fails(team):
    from django.db import transaction

    from labeling.services.priorities import item_priorities_set

    project, a = team["project"], team["a"]
    shown, ahead = open_page(a, project)
    locked, errors = threading.Event(), []

    def training_round():
        """Rewrites the shown item's priority, then (while the reload waits for that row) the reserved one's."""
        try:
            with transaction.atomic():
                item_priorities_set(project=project, priorities={shown: 5.0})
                locked.set()
                time.sleep(0.5)
                item_priorities_set(project=project, priorities={ahead[0]: 4.0})
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    writer = threading.Thread(target=training_round)
    writer.start()
    assert locked.wait(10)
    page = open_page(a, project)
    writer.join()
    assert errors == []
    assert page == (shown, ahead)
    rewritten = Item.objects.filter(pk__in=[shown, ahead[0]]).order_by("-priority")
    assert list(rewritten.values_list("priority", flat=True)) == [5.0, 4.0]  # the training round committed

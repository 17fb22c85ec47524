"""A training round rewriting priorities must not empty an annotator's queue (PostgreSQL row locks).

item_priorities_set updates every open item in one transaction; the claim's SKIP LOCKED used to pass over all of
those rows and answer "nothing left" while the round committed. The annotator saw the end-of-queue page after a
model round (the first-hour keyboard test ran dry under CI load). The claim now waits for such locks.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from labeling.services.annotations import annotation_create
from labeling.services.priorities import item_priorities_set
from labeling.services.queue import CLAIM_WAITS, item_claim_next
from tests.factories import bulk_items

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and SKIP LOCKED are PostgreSQL's; SQLite serializes writers")


def _hold_priority_locks(project, ids, seconds: float, started: threading.Event) -> None:
    """Another process's training round: rewrite priorities, keep the transaction open `seconds`, commit."""
    try:
        with transaction.atomic():
            item_priorities_set(project=project, priorities={i: float(n) for n, i in enumerate(ids)})
            started.set()
            time.sleep(seconds)
    finally:
        connections.close_all()


def _claim_during_rewrite(project, ids, user, *, hold: float):
    """(what user's claim returns, seconds it took) while another transaction rewrites priorities for `hold` s."""
    started = threading.Event()
    writer = threading.Thread(target=_hold_priority_locks, args=(project, ids, hold, started))
    writer.start()
    try:
        assert started.wait(10)
        t0 = time.monotonic()
        item = item_claim_next(project=project, user=user)
        return item, time.monotonic() - t0
    finally:
        writer.join()


def test_a_claim_during_a_priority_rewrite_waits_and_gets_the_new_best_item(
    project_factory, label_class_factory, member_of
):
    project = project_factory(holdout_fraction=0.0)
    label_class_factory(project=project, name="cat")
    ids = [i.pk for i in bulk_items(project, 5)]
    user = member_of(project)
    item, waited = _claim_during_rewrite(project, ids, user, hold=0.4)
    assert item is not None, "the queue read as empty while a round rewrote the priorities"
    assert item.pk == ids[-1]  # the rewrite gave the last item the highest priority: the claim saw it committed
    assert waited >= 0.2


def test_nothing_left_answers_at_once_when_the_rest_is_leased_not_locked(
    project_factory, label_class_factory, member_of
):
    project = project_factory(holdout_fraction=0.0)
    cls = label_class_factory(project=project, name="cat")
    items = bulk_items(project, 2)
    me, other = member_of(project), member_of(project)
    mine = item_claim_next(project=project, user=me)
    annotation_create(item=mine, user=me, class_ids=[cls.pk], seconds_spent=1.0)
    held = item_claim_next(project=project, user=other)
    assert {mine.pk, held.pk} == {i.pk for i in items}

    t0 = time.monotonic()
    assert item_claim_next(project=project, user=me) is None
    assert time.monotonic() - t0 < CLAIM_WAITS[0] + 0.5  # no waiting out the lock pauses for a lease


def test_a_lock_held_past_the_waits_gives_up_instead_of_hanging(project_factory, label_class_factory, member_of):
    project = project_factory(holdout_fraction=0.0)
    label_class_factory(project=project, name="cat")
    ids = [i.pk for i in bulk_items(project, 3)]
    user = member_of(project)
    hold = sum(CLAIM_WAITS) + 1.5
    item, waited = _claim_during_rewrite(project, ids, user, hold=hold)
    assert item is None
    assert sum(CLAIM_WAITS) <= waited < hold
    assert item_claim_next(project=project, user=user) is not None  # once committed the pool is there again

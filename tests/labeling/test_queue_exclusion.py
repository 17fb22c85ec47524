"""Which items a user may not get has one home (labeling.services.queue): the claim's raw SQL and the ORM reads
(prefetch peek, grid, the skipped list) must agree on it item by item, or the page would prefetch images the
queue never serves and list skips that never come back."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Item, ItemState, Review, Split, Verdict
from labeling.selectors.claimable import OPEN_STATES, claimable_items
from labeling.selectors.queue import skipped_items_for_user
from labeling.services.annotations import annotation_create, annotation_skip, annotation_undo
from labeling.services.queue import item_claim_next, items_peek_next
from labeling.services.resolution import resolved_label_recompute

pytestmark = pytest.mark.django_db

ITEMS = 300


def _bulk_items(project, n: int) -> list[Item]:
    """Rows only (no files): the queue never opens them. Mixed priorities, a holdout and a gold share."""
    rng = random.Random(3)
    made = Item.objects.bulk_create(
        [
            Item(
                project=project, sha256=f"{project.pk:04d}{i:060d}", width=8, height=8, format="PNG",
                original_name=f"x{i}.png", file=f"x/{i}.png", thumbnail=f"t/{i}.webp", priority=rng.random(),
                split=Split.HOLDOUT if i % 5 == 0 else Split.TRAIN, is_gold=i % 17 == 0,
            )
            for i in range(n)
        ]
    )  # fmt: skip
    return list(Item.objects.filter(pk__in=[m.pk for m in made]).order_by("id"))


@pytest.fixture
def history(project_factory, label_class_factory, member_of):
    """A 300-item project (overlap 2) where `me` has labeled, skipped, been rejected, undone and holds a lease, and
    others have labeled and hold live and expired leases."""
    project = project_factory(annotations_per_item=2, holdout_fraction=0.2, gold_rate=0.05)
    cat = label_class_factory(project=project, name="cat")
    me, bob, carol = member_of(project), member_of(project), member_of(project)
    reviewer = member_of(project, "reviewer")
    items = _bulk_items(project, ITEMS)
    random.Random(5).shuffle(items)  # each kind of history spread over all priorities and pools
    now = timezone.now()
    for item in items[0:40]:
        annotation_create(item=item, user=me, class_ids=[cat.pk])
    for item in items[40:60]:
        annotation_skip(item=item, user=me)
    for item in items[60:70]:  # rejected: the item comes back to me
        annotation = annotation_create(item=item, user=me, class_ids=[cat.pk])
        Review.objects.create(annotation=annotation, reviewer=reviewer, verdict=Verdict.REJECT)
        resolved_label_recompute(item=Item.objects.get(pk=item.pk))
    for item in items[70:75]:  # undone: back to me, under my lease
        annotation_create(item=item, user=me, class_ids=[cat.pk])
        annotation_undo(user=me, project=project)
    for item in items[75:105]:  # full
        annotation_create(item=item, user=bob, class_ids=[cat.pk])
        annotation_create(item=item, user=carol, class_ids=[cat.pk])
    for item in items[105:125]:  # one slot left
        annotation_create(item=item, user=bob, class_ids=[cat.pk])
    live, expired = now + timedelta(hours=1), now - timedelta(minutes=1)
    Item.objects.filter(pk__in=[i.pk for i in items[125:145]]).update(lease_user=bob, lease_expires_at=live)
    Item.objects.filter(pk__in=[i.pk for i in items[145:155]]).update(lease_user=bob, lease_expires_at=expired)
    Item.objects.filter(pk=items[155].pk).update(lease_user=me, lease_expires_at=live)
    return project, me, cat


def test_the_queue_serves_exactly_what_the_orm_rule_allows(history):
    # given: the ORM's view of the items `me` may get, and of the skips that come back to them last
    project, me, cat = history
    allowed = set(claimable_items(project=project, user=me).filter(state__in=OPEN_STATES).values_list("pk", flat=True))
    skipped = [s.item.pk for s in skipped_items_for_user(project=project, user=me, limit=ITEMS)]
    held = set(Item.objects.filter(lease_user=me, lease_expires_at__gt=timezone.now()).values_list("pk", flat=True))
    assert len(allowed) > 150
    assert len(skipped) == 20
    assert len(held) == 6

    # when: `me` takes the queue's items one by one until it has nothing left for them
    served, rng = [], random.Random(11)
    while (item := item_claim_next(project=project, user=me, rng=rng)) is not None and len(served) <= 2 * ITEMS:
        served.append(item.pk)
        annotation_create(item=item, user=me, class_ids=[cat.pk])

    # then: my leases first, then every allowed item once and nothing else, then my skips, oldest skip first
    assert len(served) == len(set(served))
    assert set(served[: len(held)]) == held
    assert sorted(served[: len(allowed)]) == sorted(allowed)
    assert served[len(allowed) :] == skipped


def test_the_prefetch_peek_and_the_claim_agree_on_the_next_train_items(history):
    # given: a project where the queue draws from the train pool only
    project, me, cat = history
    project.holdout_fraction, project.gold_rate = 0.0, 0.0
    project.save(update_fields=["holdout_fraction", "gold_rate"])
    Item.objects.filter(lease_user=me).update(lease_user=None, lease_expires_at=None)
    # when: the page peeks at the next 30 unlabeled train items (ORM), then `me` claims 30 (raw SQL)
    peeked = [i.pk for i in items_peek_next(project=project, user=me, exclude_ids=[], limit=30)]
    open_train = claimable_items(project=project, user=me).filter(
        state__in=OPEN_STATES, split=Split.TRAIN, is_gold=False
    )
    in_order = list(open_train.order_by("-priority", "id").values_list("pk", flat=True))
    unlabeled = set(open_train.filter(state=ItemState.UNLABELED).values_list("pk", flat=True))
    claimed = []
    for _ in range(30):
        item = item_claim_next(project=project, user=me)
        claimed.append(item.pk)
        annotation_create(item=item, user=me, class_ids=[cat.pk])

    # then: the claim serves the open train items in the ORM's order; the peek showed the unlabeled ones among them
    assert claimed == in_order[:30]
    unlabeled_claimed = [pk for pk in claimed if pk in unlabeled]
    assert peeked[: len(unlabeled_claimed)] == unlabeled_claimed

"""The queue serves the most useful open item, never the same one twice to a user, under a lease."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from labeling.models import Item, ItemState, Split
from labeling.services.annotations import annotation_create, annotation_skip
from labeling.services.queue import item_claim_next
from tests.factories import bulk_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def single(project_factory, label_class_factory):
    project = project_factory(holdout_fraction=0.0)
    classes = [label_class_factory(project=project, name=n) for n in ("cat", "dog")]
    return project, classes


def test_claims_follow_priority_then_id(single, member_of):
    project, _ = single
    items = bulk_items(project, 4)
    for item, priority in zip(items, [0.1, 0.9, 0.5, 0.9], strict=True):
        Item.objects.filter(pk=item.pk).update(priority=priority)
    users = [member_of(project) for _ in range(4)]
    got = [item_claim_next(project=project, user=u).pk for u in users]
    assert got == [items[1].pk, items[3].pk, items[2].pk, items[0].pk]
    assert item_claim_next(project=project, user=member_of(project)) is None


def test_re_requesting_returns_the_same_leased_item(single, member_of):
    project, _ = single
    bulk_items(project, 3)
    user = member_of(project)
    first = item_claim_next(project=project, user=user)
    again = item_claim_next(project=project, user=user)
    assert again.pk == first.pk
    assert Item.objects.get(pk=first.pk).lease_user_id == user.pk


def test_a_user_never_gets_an_item_they_labeled_and_skips_come_last(project_factory, label_class_factory, member_of):
    project = project_factory(annotations_per_item=2, holdout_fraction=0.0)
    cat = label_class_factory(project=project, name="cat")
    bulk_items(project, 3)
    user = member_of(project)
    seen = []
    while (item := item_claim_next(project=project, user=user)) is not None:
        seen.append(item.pk)
        if len(seen) == 2:
            annotation_skip(item=item, user=user, seconds_spent=1)
        else:
            annotation_create(item=item, user=user, class_ids=[cat.pk], seconds_spent=1)
    # The skipped item came back once the other two were labeled, and was labeled then.
    assert seen == [seen[0], seen[1], seen[2], seen[1]]
    assert len(set(seen)) == 3
    assert set(Item.objects.values_list("state", flat=True)) == {ItemState.PARTIAL}


def label_all(project, user, cls) -> None:
    while (item := item_claim_next(project=project, user=user)) is not None:
        annotation_create(item=item, user=user, class_ids=[cls.pk])


def test_skipped_items_come_back_after_the_rest_oldest_skip_first(single, member_of):
    # Given an annotator who skipped 4 of 120 open items, out of priority order
    project, (cat, _) = single
    items = bulk_items(project, 120)
    for item in items:
        Item.objects.filter(pk=item.pk).update(priority=1.0 - item.pk / 1000)
    user = member_of(project)
    skip_order = [items[50], items[3], items[99], items[10]]
    for item in skip_order:
        annotation_skip(item=item, user=user)
    # When they label everything else the queue serves
    served = []
    while (item := item_claim_next(project=project, user=user)) is not None:
        served.append(item.pk)
        annotation_create(item=item, user=user, class_ids=[cat.pk])
    # Then the 116 others come first by priority, then the skipped ones, oldest skip first, each once
    others = [i.pk for i in items if i not in skip_order]
    assert served == others + [i.pk for i in skip_order]


def test_a_user_with_only_skipped_items_left_gets_them_not_nothing_left(single, member_of):
    project, _ = single
    items = bulk_items(project, 3)
    user = member_of(project)
    for _ in items:
        annotation_skip(item=item_claim_next(project=project, user=user), user=user)
    back = item_claim_next(project=project, user=user)
    assert back.pk == items[0].pk
    assert Item.objects.get(pk=back.pk).lease_user_id == user.pk
    # Skipping it again sends it behind the other skips.
    annotation_skip(item=back, user=user)
    assert [item_claim_next(project=project, user=user).pk] == [items[1].pk]


def test_skipped_items_come_back_only_to_the_user_who_skipped_them(single, member_of):
    project, (cat, _) = single
    [a, _b] = bulk_items(project, 2)
    alice, bob = member_of(project), member_of(project)
    annotation_skip(item=item_claim_next(project=project, user=alice), user=alice)  # a
    # Bob never skipped anything: he gets a (still open for everyone) by priority, then b, then nothing.
    assert item_claim_next(project=project, user=bob).pk == a.pk
    annotation_create(item=a, user=bob, class_ids=[cat.pk])
    label_all(project, bob, cat)
    assert item_claim_next(project=project, user=bob) is None
    # a is labeled by someone else now: it does not come back to alice either.
    assert item_claim_next(project=project, user=alice) is None


def test_a_skipped_item_leased_to_someone_else_waits_for_that_lease(project_factory, label_class_factory, member_of):
    project = project_factory(annotations_per_item=2, holdout_fraction=0.0)
    cat = label_class_factory(project=project, name="cat")
    [only] = bulk_items(project, 1)
    alice, bob = member_of(project), member_of(project)
    annotation_skip(item=item_claim_next(project=project, user=alice), user=alice)
    assert item_claim_next(project=project, user=bob).pk == only.pk
    # Bob holds it: alice's skip does not come back under his lease.
    assert item_claim_next(project=project, user=alice) is None
    annotation_create(item=only, user=bob, class_ids=[cat.pk])
    # Bob's label leaves one slot of two: alice's skipped item is hers to label now.
    assert item_claim_next(project=project, user=alice).pk == only.pk


def test_overlap_two_serves_each_item_to_two_different_users(project_factory, label_class_factory, member_of):
    project = project_factory(annotations_per_item=2, holdout_fraction=0.0)
    cat = label_class_factory(project=project, name="cat")
    bulk_items(project, 5)
    users = [member_of(project) for _ in range(3)]
    served: dict[int, list[int]] = {}
    active = list(users)
    while active:
        for user in list(active):
            item = item_claim_next(project=project, user=user)
            if item is None:
                active.remove(user)
                continue
            served.setdefault(item.pk, []).append(user.pk)
            annotation_create(item=item, user=user, class_ids=[cat.pk], seconds_spent=1)
    assert len(served) == 5
    assert all(len(v) == 2 and len(set(v)) == 2 for v in served.values())
    assert set(Item.objects.values_list("state", flat=True)) == {ItemState.LABELED}


def test_live_lease_hides_item_from_others_until_it_expires(single, member_of):
    project, _ = single
    [only] = bulk_items(project, 1)
    alice, bob = member_of(project), member_of(project)
    assert item_claim_next(project=project, user=alice).pk == only.pk
    assert item_claim_next(project=project, user=bob) is None
    Item.objects.filter(pk=only.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert item_claim_next(project=project, user=bob).pk == only.pk
    assert Item.objects.get(pk=only.pk).lease_user_id == bob.pk


def test_submit_and_skip_release_the_lease(single, member_of):
    project, (cat, _) = single
    bulk_items(project, 2)
    alice, bob = member_of(project), member_of(project)
    first = item_claim_next(project=project, user=alice)
    annotation_skip(item=first, user=alice, seconds_spent=2)
    assert Item.objects.get(pk=first.pk).lease_user_id is None
    assert item_claim_next(project=project, user=bob).pk == first.pk  # a skip leaves it for others
    second = item_claim_next(project=project, user=alice)
    annotation_create(item=second, user=alice, class_ids=[cat.pk], seconds_spent=2)
    row = Item.objects.get(pk=second.pk)
    assert (row.lease_user_id, row.lease_expires_at, row.state) == (None, None, ItemState.LABELED)


def test_lease_length_comes_from_settings(single, member_of, settings):
    project, _ = single
    bulk_items(project, 1)
    settings.LABELLOOP_LEASE_SECONDS = 42
    item = item_claim_next(project=project, user=member_of(project))
    remaining = (Item.objects.get(pk=item.pk).lease_expires_at - timezone.now()).total_seconds()
    assert 30 < remaining <= 42


def test_holdout_is_served_at_its_rate_and_falls_back(project_factory, member_of):
    project = project_factory(holdout_fraction=0.25)
    train = bulk_items(project, 300)
    Item.objects.filter(pk__in=[i.pk for i in train[:100]]).update(split=Split.HOLDOUT)
    user = member_of(project)
    rng = random.Random(7)
    splits = []
    for _ in range(120):
        item = item_claim_next(project=project, user=user, rng=rng)
        splits.append(item.split)
        annotation_skip(item=item, user=user)
    share = splits.count(Split.HOLDOUT) / len(splits)
    assert 0.12 < share < 0.40
    # Only holdout left: the train draw falls back to it.
    only_holdout = project_factory(holdout_fraction=0.0)
    [h] = bulk_items(only_holdout, 1, split=Split.HOLDOUT)
    assert item_claim_next(project=only_holdout, user=member_of(only_holdout)).pk == h.pk


def test_gold_items_are_mixed_in_at_gold_rate(project_factory, member_of):
    project = project_factory(holdout_fraction=0.0, gold_rate=0.2)
    items = bulk_items(project, 200)
    Item.objects.filter(pk__in=[i.pk for i in items[:50]]).update(is_gold=True, priority=-1)
    user = member_of(project)
    rng = random.Random(3)
    gold = 0
    for _ in range(100):
        item = item_claim_next(project=project, user=user, rng=rng)
        gold += item.is_gold
        annotation_skip(item=item, user=user)
    assert 8 <= gold <= 35


def test_undone_and_rejected_annotations_do_not_exclude(single, member_of):
    from labeling.models import Review, Verdict
    from labeling.services.annotations import annotation_undo

    project, (cat, _) = single
    [only] = bulk_items(project, 1)
    alice, reviewer = member_of(project), member_of(project, "reviewer")
    annotation_create(item=item_claim_next(project=project, user=alice), user=alice, class_ids=[cat.pk])
    assert item_claim_next(project=project, user=alice) is None
    annotation_undo(user=alice, project=project)
    assert item_claim_next(project=project, user=alice).pk == only.pk
    annotation = annotation_create(item=only, user=alice, class_ids=[cat.pk])
    Review.objects.create(annotation=annotation, reviewer=reviewer, verdict=Verdict.REJECT)
    from labeling.services.resolution import resolved_label_recompute

    resolved_label_recompute(item=Item.objects.get(pk=only.pk))
    assert item_claim_next(project=project, user=alice).pk == only.pk


@pytest.mark.postgres
def test_claim_query_uses_an_index_not_a_seq_scan(single, member_of):
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN check is for PostgreSQL")
    from labeling.services.queue import TRAIN, _pool_params, claim_sql

    project, _ = single
    items = bulk_items(project, 20_000)
    user = member_of(project)
    for item in items[:50]:  # the user has history: skips and labels
        annotation_skip(item=item, user=user)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_item")
        cursor.execute("ANALYZE labeling_annotation")
        params = _pool_params(project=project, user=user, pool=TRAIN, state=ItemState.UNLABELED, now=timezone.now())
        cursor.execute("EXPLAIN " + claim_sql(pool=TRAIN, lock=True), params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on labeling_item" not in plan, plan
    assert "item_queue_idx" in plan, plan


def _rows_handled(node: dict) -> int:
    """Rows an EXPLAIN ANALYZE plan node produced or threw away, over all its loops, with its children's."""
    loops = node.get("Actual Loops", 1)
    own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
    own += node.get("Rows Removed by Join Filter", 0) * loops
    return own + sum(_rows_handled(child) for child in node.get("Plans", []))


@pytest.mark.postgres
def test_a_claim_with_thousands_of_own_labels_awaiting_a_second_annotator_checks_each_once(project_factory, member_of):
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN ANALYZE check is for PostgreSQL")
    import json

    from django.db.models import F

    from labeling.models import Annotation
    from labeling.services.queue import TRAIN, _pool_params, claim_sql

    # Given an overlap-2 project where one annotator labeled the top 2,000 of 10,000 items before anyone else
    project = project_factory(annotations_per_item=2, holdout_fraction=0.0)
    items = bulk_items(project, 10_000)
    Item.objects.filter(project=project).update(priority=1.0 / (F("id") + 1))
    first = member_of(project)
    mine = items[:2000]
    Annotation.objects.bulk_create([Annotation(item=i, user=first) for i in mine])
    Item.objects.filter(pk__in=[i.pk for i in mine]).update(state=ItemState.PARTIAL, annotation_count=1)

    # When they ask for their next item: the probe of the items awaiting a second label finds only theirs
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        params = _pool_params(project=project, user=first, pool=TRAIN, state=ItemState.PARTIAL, now=timezone.now())
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + claim_sql(pool=TRAIN, lock=True), params)
        raw = cursor.fetchone()[0]
    (plan,) = json.loads(raw) if isinstance(raw, str) else raw

    # Then each of their 2,000 items is checked a few times at most, not against each of their other labels: the
    # anti-join PostgreSQL chose compared 2,000 x 1,000 pairs (0.3 s a claim at 5,000 labels, 5 s at 20,000)
    handled = _rows_handled(plan["Plan"])
    assert handled <= 10 * len(mine), json.dumps(plan["Plan"], indent=1)[:3000]
    assert item_claim_next(project=project, user=first).state == ItemState.UNLABELED
    assert item_claim_next(project=project, user=member_of(project)).pk == mine[0].pk  # the second annotator's

    # and grid mode's query (by the model's class: open items of any state) does the same work per item
    from labeling.selectors.queue import grid_items
    from training.models import ModelVersion, Prediction

    label_class = project.classes.create(name="cat", order=0)
    version = ModelVersion.objects.create(project=project, number=1, active=True, artifact_path="x", architecture="x")
    guess = {"model_version": version, "predicted_class": label_class, "confidence": 0.9, "uncertainty": 0.1}
    Prediction.objects.bulk_create([Prediction(item=i, probabilities=[0.9], **guess) for i in items[:3000]])
    queries = []

    def keep(execute, sql, params, many, context):
        queries.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        shown = grid_items(project=project, user=first, class_id=label_class.pk)
    assert len(shown) == 48
    assert not {row["item"].pk for row in shown} & {i.pk for i in mine}
    (sql, params) = next(q for q in queries if "training_prediction" in q[0])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        raw = cursor.fetchone()[0]
    (plan,) = json.loads(raw) if isinstance(raw, str) else raw
    assert _rows_handled(plan["Plan"]) <= 20 * len(mine), json.dumps(plan["Plan"], indent=1)[:3000]


def test_the_skip_fall_back_walks_the_users_skips_by_index(single, member_of):
    from labeling.services.queue import _skipped_params, skipped_claim_sql

    # Given a big project where the user skipped a few items
    project, _ = single
    items = bulk_items(project, 3000)
    user = member_of(project)
    for item in items[:30]:
        annotation_skip(item=item, user=user)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        params = _skipped_params(project=project, user=user, now=timezone.now())
        explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
        cursor.execute(explain + skipped_claim_sql(lock=True), params)
        plan = "\n".join(str(row) for row in cursor.fetchall())
    # Then the fall-back walks the user's skips on their partial index and never scans the items
    # (PostgreSQL may still seq-scan this test's tiny annotation table inside the NOT EXISTS probes).
    assert "annotation_user_skip_idx" in plan, plan
    assert not re.search(r"SCAN (i|s)\b|Seq Scan on labeling_item", plan), plan


def test_labeled_today_counts_only_live_labels_since_midnight(single, member_of):
    from django.test import Client
    from django.urls import reverse

    from labeling.models import Annotation
    from labeling.selectors.queue import labeling_progress
    from labeling.services.annotations import annotation_undo

    # Given an annotator who labeled 3 items, skipped 2, undid their last label, and labeled one yesterday
    project, (cat, _) = single
    items = bulk_items(project, 8)
    user, other = member_of(project), member_of(project)
    for item in items[:2]:
        annotation_create(item=item, user=user, class_ids=[cat.pk])
    for item in items[2:4]:
        annotation_skip(item=item, user=user)
    annotation_create(item=items[4], user=user, class_ids=[cat.pk])
    annotation_undo(user=user, project=project)
    yesterday = annotation_create(item=items[5], user=user, class_ids=[cat.pk])
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    Annotation.objects.filter(pk=yesterday.pk).update(created_at=midnight - timedelta(minutes=1))
    annotation_create(item=items[6], user=other, class_ids=[cat.pk])  # someone else's
    # When they look at their progress
    client = Client()
    client.force_login(user)
    page = client.get(reverse("labeling:label", args=[project.slug])).content.decode()
    # Then only the two labels that stand count: not the skips, the undone label, yesterday's or other people's
    assert labeling_progress(project=project, user=user)["mine_today"] == 2
    assert re.search(r'id="mine-today">\s*(\d+)\s*<', page).group(1) == "2"


def test_an_annotator_sees_their_skips_in_the_order_they_come_back(single, member_of):
    from labeling.selectors.queue import skipped_items_for_user
    from labeling.services.annotations import annotation_undo

    project, (cat, _) = single
    items = bulk_items(project, 6)
    user, other = member_of(project), member_of(project)
    for item in (items[4], items[1], items[2], items[3]):
        annotation_skip(item=item, user=user)
    annotation_undo(user=user, project=project)  # withdraws the skip of items[3]
    annotation_skip(item=items[0], user=other)  # someone else's skip
    annotation_create(item=items[2], user=other, class_ids=[cat.pk])  # labeled by another: will not come back
    skips = skipped_items_for_user(project=project, user=user)
    assert [s.item.pk for s in skips] == [items[4].pk, items[1].pk]
    assert skips[0].skipped_at <= skips[1].skipped_at
    # The list is what the queue does: label the rest, and these come back in this order.
    served = []
    while (item := item_claim_next(project=project, user=user)) is not None:
        served.append(item.pk)
        annotation_create(item=item, user=user, class_ids=[cat.pk])
    assert served[-2:] == [items[4].pk, items[1].pk]
    assert skipped_items_for_user(project=project, user=user) == []

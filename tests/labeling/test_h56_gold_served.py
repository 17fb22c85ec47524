"""Gold items are served to every annotator (tester h56 P13).

A manager makes gold items the product's way: "Mark as gold item" on a review card, so the item is already labeled.
Each annotator who has not answered it is served it at the project's gold rate, whatever its state and however many
answers it has, once; the answers measure the annotators (the quality page counts them) and never change the item's
label, which is the gold answer.
"""

from __future__ import annotations

import random
import re

import pytest
from django.urls import reverse

from labeling.models import Item, ItemState, ReviewTask, ReviewTaskReason
from labeling.services.annotations import annotation_create
from labeling.services.queue import item_claim_next
from labeling.services.reviews import item_gold_set
from tests.factories import page_client, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def shapes(project_factory, label_class_factory, item_factory, member_of):
    """Overlap 2; three gold items labeled "circle" by two annotators and marked gold; eight ordinary open items. No
    audit sample (it opens a task for a fixed 5 % of annotations by id, gold answers too: not what these tests read)."""
    project = project_factory(
        slug="shapes", holdout_fraction=0.0, annotations_per_item=2, gold_rate=1.0, review_sample_rate=0.0
    )
    circle = label_class_factory(project=project, name="circle")
    square = label_class_factory(project=project, name="square")
    ann1, ann2 = member_of(project, username="ann1"), member_of(project, username="ann2")
    gold = [item_factory(project=project, priority=-1.0) for _ in range(3)]
    ordinary = [item_factory(project=project, priority=1.0) for _ in range(8)]
    for item in gold:
        for user in (ann1, ann2):
            annotation_create(item=item, user=user, class_ids=[circle.pk])
        item_gold_set(item=item, class_ids=[circle.pk])
    assert {i.state for i in Item.objects.filter(pk__in=[g.pk for g in gold])} == {ItemState.LABELED}
    return project, circle, square, gold, ordinary


def _next(client) -> dict:
    response = client.get(reverse("api-queue-next", args=["shapes"]), {"suggest": "0"})
    assert response.status_code == 200
    return response.json()["item"]


def _label(client, item_id: int, class_id: int):
    return client.post(
        reverse("api-annotation-create", args=["shapes"]), {"item_id": item_id, "class_ids": [class_id]}, format="json"
    )


def test_a_new_annotator_is_served_each_labeled_gold_item_once_and_the_quality_page_counts_the_answers(
    shapes, member_of
):
    # Given three labeled gold items, gold rate 1, and an annotator who never saw them
    project, circle, square, gold, ordinary = shapes
    annotator = member_of(project, username="annotator")
    client = token_client(annotator)

    # When they take items from /next/ and answer each (two right, one wrong)
    served = []
    for answer in (circle, circle, square, circle):
        item = _next(client)
        served.append(item["id"])
        assert _label(client, item["id"], answer.pk).status_code == 201

    # Then the three gold items come first, each once, then ordinary items
    assert sorted(served[:3]) == sorted(g.pk for g in gold)
    assert served[3] in {o.pk for o in ordinary}

    # And the quality page counts their three gold answers, two of them right
    manager = member_of(project, role="manager", username="boss")
    html = page_client(manager).get(reverse("labeling:quality", args=["shapes"])).content.decode()
    row = re.search(r'<tr data-user="annotator">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r'<td class="num[^"]*">(.*?)</td>', row, re.S)
    assert cells[5].strip() == "3"  # Gold answers
    assert cells[6].strip() == "67%"  # Accuracy (gold)


def test_answers_past_the_overlap_keep_the_gold_label_open_no_disagreement_and_a_wrong_one_a_gold_check(
    shapes, member_of
):
    # Given a labeled gold item (answer circle) and three more annotators
    project, circle, square, gold, _ = shapes
    item = gold[0]
    clients = [token_client(member_of(project, username=f"extra{k}")) for k in range(3)]

    # When two answer square and one circle, past the overlap of 2
    for client, answer in zip(clients, (square, square, circle), strict=True):
        response = _label(client, item.pk, answer.pk)
        assert response.status_code == 201
        assert response.json()["item_state"] == ItemState.LABELED

    # Then the item keeps its gold answer as its label, and counts every answer
    detail = token_client(member_of(project, role="manager", username="boss")).get(
        reverse("api-item", args=["shapes", item.pk])
    )
    assert detail.json()["labels"] == [circle.pk]
    assert detail.json()["annotation_count"] == 5
    # And the wrong answers open a gold check, no disagreement
    reasons = set(ReviewTask.objects.filter(item=item, done=False).values_list("reason", flat=True))
    assert reasons == {ReviewTaskReason.GOLD}

    # And an annotator who answered it is refused a second answer (once per annotator)
    again = _label(clients[0], item.pk, circle.pk)
    assert again.status_code == 409
    assert "already labeled" in again.json()["detail"]


def test_another_annotators_lease_does_not_keep_a_gold_item_from_an_answer(shapes, member_of):
    project, circle, _, gold, _ = shapes
    holder, other = member_of(project, username="holder"), member_of(project, username="other")
    held = item_claim_next(project=project, user=holder)
    assert held.pk in {g.pk for g in gold}
    # Another annotator answers the same gold item while the first holds it
    assert _label(token_client(other), held.pk, circle.pk).status_code == 201
    # And the holder can still answer it
    assert _label(token_client(holder), held.pk, circle.pk).status_code == 201


def test_the_labeling_page_serves_a_gold_item_and_takes_its_answer(shapes, member_of):
    project, circle, _, gold, _ = shapes
    client = page_client(member_of(project, username="annotator"))
    html = client.get(reverse("labeling:label", args=["shapes"])).content.decode()
    shown = int(re.search(r'data-item="(\d+)"', html).group(1))
    assert shown in {g.pk for g in gold}
    response = client.post(reverse("labeling:label_submit", args=["shapes", shown]), {"class_ids": [circle.pk]})
    assert response.status_code in (200, 302)
    assert "needs no more annotations" not in client.get(reverse("labeling:label", args=["shapes"])).content.decode()
    assert Item.objects.get(pk=shown).annotation_count == 3


def test_at_gold_rate_one_half_the_gold_items_come_among_the_served_ones(shapes, member_of):
    # As in the report: gold rate 0.5, a new annotator labels what /next/ serves
    project, circle, _, gold, _ = shapes
    project.gold_rate = 0.5
    project.save(update_fields=["gold_rate"])
    client = token_client(member_of(project, username="annotator"))
    random.seed(56)
    served = []
    for _ in range(11):
        item = _next(client)
        served.append(item["id"])
        assert _label(client, item["id"], circle.pk).status_code == 201
    assert sorted(pk for pk in served if pk in {g.pk for g in gold}) == sorted(g.pk for g in gold)
    assert len(set(served)) == 11


@pytest.mark.postgres
def test_the_gold_probe_of_labeled_items_walks_the_gold_index(project_factory, member_of):
    from django.db import connection
    from django.utils import timezone

    from labeling.services.queue import GOLD, _pool_params, claim_sql
    from tests.factories import bulk_items

    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN check is for PostgreSQL")
    # Given 20,000 labeled items of which 50 are gold
    project = project_factory(annotations_per_item=2, holdout_fraction=0.0, gold_rate=0.5)
    items = bulk_items(project, 20_000)
    Item.objects.filter(project=project).update(state=ItemState.LABELED)
    Item.objects.filter(pk__in=[i.pk for i in items[::400]]).update(is_gold=True)
    user = member_of(project)
    # When the claim probes the gold pool's labeled items
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_item")
        params = _pool_params(project=project, user=user, pool=GOLD, state=ItemState.LABELED, now=timezone.now())
        cursor.execute("EXPLAIN " + claim_sql(pool=GOLD, lock=True), params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # Then it walks the gold index, not the table
    assert "Seq Scan on labeling_item" not in plan, plan
    assert "item_gold_queue_idx" in plan, plan

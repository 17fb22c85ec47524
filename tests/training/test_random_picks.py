"""Strategy picks vs random picks on the model page, the flags' bulk write and their migration.

The page's shares are checked against labels and predictions made by hand, with Wilson intervals worked out by
hand: 8 of 10 right is 80 % [49 %, 94 %]; 6 of 15 is 40 % [20 %, 64 %]."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Annotation, Item, LabelClass, Role, Split
from labeling.services.priorities import item_priorities_set
from tests.factories import bulk_items
from training.models import ModelVersion, Prediction
from training.selectors import picks

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(days=1)


def model_page(project, member_of) -> str:
    client = Client()
    client.force_login(member_of(project, Role.REVIEWER))
    response = client.get(reverse("training:model", args=[project.slug]))
    assert response.status_code == 200
    return response.content.decode()


def row(html: str, key: str) -> str:
    start = html.index(f'id="picks-{key}"')
    return html[start : html.index("</tr>", start)]


def predicted(item, version, cls, at) -> None:
    Prediction.objects.create(
        item=item, model_version=version, probabilities=[0.9, 0.1], predicted_class=cls, confidence=0.9, uncertainty=0.1
    )
    Prediction.objects.filter(item=item, model_version=version).update(created_at=at)


def labeled(item, user, cls, *, at_random: bool, at) -> Annotation:
    annotation = Annotation.objects.create(item=item, user=user, picked_at_random=at_random)
    annotation.classes.add(cls)
    Annotation.objects.filter(pk=annotation.pk).update(created_at=at)
    return annotation


def test_a_multi_label_suggestion_is_right_only_with_the_whole_label_set(project_factory, member_of, monkeypatch):
    # Given a multi-label project whose model predicted {a, b} (0.9, 0.7; c at 0.2) for every item
    project = project_factory(al_strategy="diverse_margin", task_type="multi")
    a, b, c = (LabelClass.objects.create(project=project, name=n, order=k) for k, n in enumerate("abc"))
    version = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", class_ids=[a.pk, b.pk, c.pk], active=True
    )
    user = member_of(project, Role.ANNOTATOR)
    items = bulk_items(project, 20)
    for item in items:
        Prediction.objects.create(
            item=item, model_version=version, probabilities=[0.9, 0.7, 0.2], predicted_class=a, confidence=0.7,
            uncertainty=0.3,
        )  # fmt: skip
    Prediction.objects.filter(item__project=project).update(created_at=T0)

    def label(item, classes, at_random):
        annotation = labeled(item, user, classes[0], at_random=at_random, at=T0 + timedelta(hours=1))
        annotation.classes.add(*classes[1:])

    # 10 labels on random draws: 8 {a, b} (right), 1 {a} (b missing), 1 {a, b, c} (c extra)
    for k, item in enumerate(items[:10]):
        label(item, [a, b] if k < 8 else [a] if k == 8 else [a, b, c], True)
    # 10 on the strategy's picks: 4 {a, b}, 6 {a}: the top class a is among the given ones on all 10
    for k, item in enumerate(items[10:]):
        label(item, [a, b] if k < 4 else [a], False)

    # When a reviewer opens the model page
    html = model_page(project, member_of)

    # Then a suggestion counts as right only when its set is the label's: 8 of 10 and 4 of 10, not 10 of 10
    assert "80 %" in row(html, "random")
    assert "[49 %, 94 %] n = 10" in row(html, "random")
    assert "40 %" in row(html, "strategy")
    assert "exactly the classes given" in html
    assert 'id="picks-latest"' not in html

    # ... and a large project's page reads only its latest labels, and says so: here the latest 12, the 10 strategy
    # picks and the last 2 random draws (both wrong)
    monkeypatch.setattr(picks, "MULTI_LABEL_READ", 12)
    html = model_page(project, member_of)
    assert "[0 %, 66 %] n = 2" in row(html, "random")
    assert "40 %" in row(html, "strategy")
    assert '<span id="picks-latest">over the latest 12 labels</span>' in html


def test_the_model_page_compares_the_suggestion_on_random_draws_with_the_strategys_picks(project_factory, member_of):
    # Given a default-strategy project whose model suggested class "a" for every item
    project = project_factory(al_strategy="diverse_margin")
    a = LabelClass.objects.create(project=project, name="a", order=0)
    b = LabelClass.objects.create(project=project, name="b", order=1)
    old = ModelVersion.objects.create(project=project, number=1, artifact_path="x", class_ids=[a.pk, b.pk])
    version = ModelVersion.objects.create(
        project=project, number=2, artifact_path="y", class_ids=[a.pk, b.pk], active=True
    )
    user = member_of(project, Role.ANNOTATOR)
    items = bulk_items(project, 34)
    shown, label_time = T0, T0 + timedelta(hours=1)
    for item in items:
        predicted(item, old, b, T0 - timedelta(hours=1))  # an older version said "b": not what was shown
        predicted(item, version, a, shown)
    # 10 labels on random draws, 8 of them "a" (the suggestion was right)
    for k, item in enumerate(items[:10]):
        labeled(item, user, a if k < 8 else b, at_random=True, at=label_time)
    # 20 on the strategy's picks: 15 had a suggestion shown, 6 of those right; 5 were made before any prediction
    for k, item in enumerate(items[10:25]):
        labeled(item, user, a if k < 6 else b, at_random=False, at=label_time)
    for item in items[25:30]:
        Prediction.objects.filter(item=item).update(created_at=label_time + timedelta(hours=1))
        labeled(item, user, a, at_random=False, at=label_time)
    # Left out: a skip, a label that was undone, and the holdout (served by its own rule)
    Annotation.objects.create(item=items[30], user=user, skipped=True, picked_at_random=True)
    undone = labeled(items[31], user, a, at_random=True, at=label_time)
    Annotation.objects.create(item=items[31], user=user, undoes=undone)
    Item.objects.filter(pk=items[32].pk).update(split=Split.HOLDOUT)
    labeled(items[32], user, b, at_random=False, at=label_time)

    # When a reviewer opens the model page
    html = model_page(project, member_of)

    # Then both shares show with their n and Wilson interval, the random draws' higher, and why it matters
    assert "Strategy picks vs random picks" in html
    random_row, strategy_row = row(html, "random"), row(html, "strategy")
    assert "<td>10</td>" in random_row
    assert "80 %" in random_row
    assert 'data-low="0.490" data-high="0.943"' in random_row
    assert "[49 %, 94 %] n = 10" in random_row
    assert "<td>20</td>" in strategy_row
    assert "40 %" in strategy_row
    assert 'data-low="0.198" data-high="0.643"' in strategy_row
    assert "[20 %, 64 %] n = 15" in strategy_row
    assert "estimate the model's accuracy on the unlabeled pool without bias" in html
    assert 'id="picks-none"' not in html


def test_a_project_without_random_draws_says_why(project_factory, member_of, item_factory):
    # Given a margin-sampling project with labels, and a default-strategy project with none on random draws
    margin = project_factory(al_strategy="margin")
    cls = LabelClass.objects.create(project=margin, name="a")
    labeled(item_factory(project=margin), member_of(margin, Role.ANNOTATOR), cls, at_random=False, at=T0)
    fresh = project_factory(al_strategy="diverse_margin")

    # When their model pages are opened
    margin_html, fresh_html = model_page(margin, member_of), model_page(fresh, member_of)

    # Then the first says its strategy draws none (its labels still show), the second that the cold start draws none
    assert "strategy <code>margin</code> draws none" in margin_html
    assert "no label made with a suggestion shown yet" in row(margin_html, "strategy")
    assert "No label on a random draw yet: the cold start draws none" in fresh_html
    assert "10 % of each batch" in fresh_html
    assert 'id="picks-random"' not in fresh_html


def test_the_flags_are_rewritten_with_the_priorities_in_one_bulk_write(project_factory, django_assert_max_num_queries):
    # Given 600 pool items, two of them flagged by an earlier scoring
    project = project_factory()
    items = bulk_items(project, 600)
    Item.objects.filter(pk__in=[items[0].pk, items[1].pk]).update(picked_at_random=True)
    drawn = {items[5].pk, items[400].pk}

    # When a scoring writes every priority and its two random draws
    with django_assert_max_num_queries(3):  # savepoint, one statement (PostgreSQL) or executemany (SQLite), release
        n = item_priorities_set(project=project, priorities={i.pk: 0.5 for i in items}, random_ids=drawn)

    # Then only its draws are flagged
    assert n == 600
    assert set(Item.objects.filter(picked_at_random=True).values_list("pk", flat=True)) == drawn


def test_a_random_draw_outside_the_ranking_is_refused_and_changes_nothing(project_factory):
    project = project_factory()
    items = bulk_items(project, 3)
    Item.objects.filter(pk=items[0].pk).update(picked_at_random=True)
    with pytest.raises(ValueError, match="not among the ranked items"):
        item_priorities_set(project=project, priorities={items[1].pk: 1.5}, random_ids=[items[2].pk])
    assert list(Item.objects.order_by("pk").values_list("priority", "picked_at_random")) == [
        (0.0, True),
        (0.0, False),
        (0.0, False),
    ]


@pytest.mark.django_db(transaction=True)
def test_items_and_labels_from_before_the_random_share_are_not_random_draws():
    before, after = [("labeling", "0009_project_training_mode_auto")], [("labeling", "0010_picked_at_random")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        user = old.get_model("auth", "User").objects.create(username="old-annotator")
        project = old.get_model("labeling", "Project").objects.create(name="Old", slug="old")
        item = old.get_model("labeling", "Item").objects.create(
            project=project, sha256="a" * 64, width=8, height=8, format="PNG", original_name="a.png", priority=1.5
        )
        old.get_model("labeling", "Annotation").objects.create(item=item, user=user)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        # No earlier scoring drew at random: nothing is counted as a random draw after the fact.
        assert list(new.get_model("labeling", "Item").objects.values_list("picked_at_random", flat=True)) == [False]
        assert list(new.get_model("labeling", "Annotation").objects.values_list("picked_at_random", flat=True)) == [
            False
        ]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

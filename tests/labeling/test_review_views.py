"""Review and label-quality pages over HTTP: what a reviewer sees and does, and who may not."""

import pytest
from django.urls import reverse

from labeling.models import Item, ItemState, ResolvedLabel, Review, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from labeling.services.reviews import item_gold_set, review_task_open

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(review_sample_rate=1.0)
    cat = label_class_factory(project=project, name="cat", hotkey="1")
    dog = label_class_factory(project=project, name="dog", hotkey="2")
    ann = member_of(project, Role.ANNOTATOR, "ann")
    rev = member_of(project, Role.REVIEWER, "rev")
    boss = member_of(project, Role.MANAGER, "boss")
    items = [item_factory(project=project) for _ in range(3)]
    for item in items:
        annotation_create(item=item, user=ann, class_ids=[cat.pk])
    return {"project": project, "cat": cat, "dog": dog, "ann": ann, "rev": rev, "boss": boss, "items": items}


def test_reviewer_sees_the_next_task_with_the_given_label_and_annotator(client, world):
    client.force_login(world["rev"])
    response = client.get(reverse("labeling:review", args=[world["project"].slug]))
    html = response.content.decode()
    assert response.status_code == 200
    assert ReviewTask.objects.filter(reason=ReviewTaskReason.SAMPLE, done=False).count() == 3  # sample rate 1.0
    assert 'id="given-annotator">ann<' in html
    assert "Audit sample" in html
    assert 'data-key="2"' in html  # class hotkeys for corrections


def test_verdict_post_records_review_and_serves_the_next_card(client, world):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).order_by("id").first()

    response = client.post(
        reverse("labeling:review_verdict", args=[project.slug, task.pk]),
        {"verdict": "correct", "class_ids": [world["dog"].pk]},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert 'id="review-card"' in response.content.decode()
    assert set(ResolvedLabel.objects.get(item_id=task.item_id).classes.values_list("name", flat=True)) == {"dog"}
    assert Review.objects.get().reviewer == world["rev"]


def test_bad_verdict_shows_an_error_and_changes_nothing(client, world):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).first()
    response = client.post(
        reverse("labeling:review_verdict", args=[project.slug, task.pk]),
        {"verdict": "correct"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "A correction needs at least one class" in response.content.decode()
    assert not Review.objects.exists()


def test_reject_over_plain_post_redirects_and_reopens_the_item(client, world):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).first()
    response = client.post(reverse("labeling:review_verdict", args=[project.slug, task.pk]), {"verdict": "reject"})
    assert response.status_code == 302
    assert Item.objects.get(pk=task.item_id).state == ItemState.UNLABELED


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("labeling:review", []),
        ("labeling:quality", []),
        ("labeling:review_label_errors", []),
        ("training:model_quality", []),
        ("training:model_compare", []),
    ],
)
def test_annotators_get_403_on_review_and_quality_pages(client, world, name, args):
    client.force_login(world["ann"])
    assert client.get(reverse(name, args=[world["project"].slug, *args])).status_code == 403


def test_annotator_cannot_post_verdicts_or_mark_gold(client, world):
    project = world["project"]
    task = review_task_open(project=project, item=world["items"][0], reason=ReviewTaskReason.SAMPLE)
    client.force_login(world["ann"])
    assert (
        client.post(reverse("labeling:review_verdict", args=[project.slug, task.pk]), {"verdict": "accept"}).status_code
        == 403
    )
    client.force_login(world["rev"])  # reviewers review but do not curate gold
    gold_url = reverse("labeling:item_gold", args=[project.slug, world["items"][0].pk])
    assert client.post(gold_url, {"class_ids": [world["cat"].pk]}).status_code == 403
    assert not Review.objects.exists()


def test_other_projects_are_404(client, world, project_factory, member_of):
    other = project_factory()
    stranger = member_of(other, Role.MANAGER, "stranger")
    client.force_login(stranger)
    project = world["project"]
    assert client.get(reverse("labeling:review", args=[project.slug])).status_code == 404
    assert client.get(reverse("labeling:quality", args=[project.slug])).status_code == 404
    task = review_task_open(project=project, item=world["items"][0], reason=ReviewTaskReason.SAMPLE)
    # A task id of project A under project B's URL is not found either.
    assert (
        client.post(reverse("labeling:review_verdict", args=[other.slug, task.pk]), {"verdict": "accept"}).status_code
        == 404
    )


def test_manager_marks_an_item_gold_from_the_review_page(client, world):
    project, item = world["project"], world["items"][0]
    client.force_login(world["boss"])
    response = client.post(
        reverse("labeling:item_gold", args=[project.slug, item.pk]), {"action": "set", "class_ids": [world["dog"].pk]}
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.is_gold
    assert list(item.gold_classes.values_list("name", flat=True)) == ["dog"]
    # ann answered "cat" on it: that wrong gold answer now waits for review.
    assert ReviewTask.objects.filter(item=item, reason=ReviewTaskReason.GOLD, done=False).exists()


def test_quality_page_shows_annotator_accuracy(client, world):
    project = world["project"]
    item_gold_set(item=world["items"][0], class_ids=[world["cat"].pk])
    item_gold_set(item=world["items"][1], class_ids=[world["dog"].pk])
    client.force_login(world["rev"])
    html = client.get(reverse("labeling:quality", args=[project.slug])).content.decode()
    assert "Fleiss&#x27; kappa" in html or "Fleiss' kappa" in html
    row = html[html.index('data-user="ann"') :]
    row = row[: row.index("</tr>")]
    assert ">3<" in row  # labels
    assert "50%" in row  # 1 of 2 gold answers right
    assert "<svg" in html


def test_label_errors_page_lists_tasks_by_score(client, world):
    project = world["project"]
    low, high = world["items"][0], world["items"][1]
    ReviewTask.objects.create(project=project, item=low, reason=ReviewTaskReason.LABEL_ERROR, score=0.3)
    ReviewTask.objects.create(project=project, item=high, reason=ReviewTaskReason.LABEL_ERROR, score=0.9)
    client.force_login(world["rev"])
    html = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()
    assert html.index(f'data-item="{high.pk}"') < html.index(f'data-item="{low.pk}"')


def test_queue_api_never_returns_gold_answers(client, project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(gold_rate=1.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    secret = label_class_factory(project=project, name="zebra", hotkey="2")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    gold = item_factory(project=project, is_gold=True)
    item_gold_set(item=gold, class_ids=[secret.pk])
    client.force_login(annotator)
    response = client.post(reverse("api-queue-next", args=[project.slug]))
    if response.status_code == 405:
        response = client.get(reverse("api-queue-next", args=[project.slug]))
    assert response.status_code == 200
    data = response.json()
    assert data["item"]["id"] == gold.pk  # the gold item is served like any other
    assert "gold" not in response.content.decode().lower()
    assert data["suggestions"] == []  # and its answer is not offered as a suggestion

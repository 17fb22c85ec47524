"""Next on the review page walks through every open task in turn (stop 55's tester: with 9 audit tasks open, Next
took turns between the first two and the other 7 were never shown)."""

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Review, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(cat_dog_review, item_factory):
    """A reviewer's client and 7 open tasks: 5 audit samples (two of them tied on score) and 2 disagreements."""
    world = cat_dog_review(review_sample_rate=0.0, members={"ann": Role.ANNOTATOR, "rev": Role.REVIEWER})
    project, cat = world["project"], world["cat"]
    tasks = {}
    for reason, scores in (
        (ReviewTaskReason.SAMPLE, [0.9, 0.5, 0.5, 0.2, 0.0]),
        (ReviewTaskReason.DISAGREEMENT, [1, 0]),
    ):
        for score in scores:
            item = item_factory(project=project)
            annotation = annotation_create(item=item, user=world["ann"], class_ids=[cat.pk])
            tasks.setdefault(reason, []).append(
                ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=reason, score=score)
            )
    return project, world["rev"], tasks


def walk(client, project, presses: int, reason: str = "") -> list[int]:
    """The task ids a reviewer sees on opening the tab and pressing Next `presses` times (following the page's link)."""
    page = reverse("labeling:review", args=[project.slug])
    params = {"reason": reason} if reason else {}
    shown = [client.get(page, params).context["task"].pk]
    for _ in range(presses):
        answer = client.get(page, {**params, "after": shown[-1]})
        assert answer.status_code == 200
        shown.append(answer.context["task"].pk)
    return shown


def test_next_shows_each_open_audit_task_once_then_starts_over(queue, client):
    project, reviewer, tasks = queue
    client.force_login(reviewer)
    samples = [t.pk for t in tasks[ReviewTaskReason.SAMPLE]]

    shown = walk(client, project, presses=6, reason="sample")

    # Then the first 5 cards are the 5 open audit tasks, highest score first (a tie by age), and then the first again
    assert shown == samples + samples[:2]


def test_next_on_the_all_tab_walks_every_reason_in_its_order(queue, client):
    project, reviewer, tasks = queue
    client.force_login(reviewer)
    every = [t.pk for t in tasks[ReviewTaskReason.DISAGREEMENT]] + [t.pk for t in tasks[ReviewTaskReason.SAMPLE]]

    assert walk(client, project, presses=7) == every + every[:1]


def test_next_after_a_task_settled_meanwhile_goes_on_from_its_place(queue, client):
    project, reviewer, tasks = queue
    client.force_login(reviewer)
    samples = tasks[ReviewTaskReason.SAMPLE]
    # Given the second audit card settled in another tab while this one showed it
    ReviewTask.objects.filter(pk=samples[1].pk).update(done=True)

    # When Next is pressed on it, the card after it comes, not the first again
    answer = client.get(reverse("labeling:review", args=[project.slug]), {"reason": "sample", "after": samples[1].pk})
    assert answer.context["task"].pk == samples[2].pk


def test_a_lone_task_stays_and_a_next_link_naming_no_task_starts_at_the_first(queue, client):
    project, reviewer, tasks = queue
    client.force_login(reviewer)
    page = reverse("labeling:review", args=[project.slug])
    lone = tasks[ReviewTaskReason.DISAGREEMENT]
    ReviewTask.objects.filter(pk=lone[1].pk).update(done=True)

    assert client.get(page, {"reason": "disagreement", "after": lone[0].pk}).context["task"].pk == lone[0].pk
    for after in ("0", "999999"):  # a hand-edited link, or a task deleted since
        answer = client.get(page, {"reason": "sample", "after": after})
        assert answer.status_code == 200
        assert answer.context["task"].pk == tasks[ReviewTaskReason.SAMPLE][0].pk


def test_a_card_skipped_with_next_comes_back_after_the_others_not_after_the_next_verdict(queue, client):
    project, reviewer, tasks = queue
    client.force_login(reviewer)
    page = reverse("labeling:review", args=[project.slug])
    samples = [t.pk for t in tasks[ReviewTaskReason.SAMPLE]]

    # Given the reviewer skipped the first audit card with Next and accepts the second
    assert client.get(page, {"reason": "sample", "after": samples[0]}).context["task"].pk == samples[1]
    answer = client.post(
        reverse("labeling:review_verdict", args=[project.slug, samples[1]]),
        {"verdict": "accept", "reason": "sample"},
        HTTP_HX_REQUEST="true",
    )

    # Then the card after the accepted one comes, and the skipped one only once the rest are done
    assert f'id="review-card" class="review-card" data-task="{samples[2]}"' in answer.content.decode()
    follow = client.post(reverse("labeling:review_verdict", args=[project.slug, samples[2]]), {"verdict": "accept"})
    assert f"after={samples[2]}" in follow.url
    for pk in samples[3:]:
        client.post(reverse("labeling:review_verdict", args=[project.slug, pk]), {"verdict": "accept"})
    assert client.get(page, {"reason": "sample", "after": samples[-1]}).context["task"].pk == samples[0]


def test_a_second_reviewer_on_a_settled_card_is_told_by_whom_and_gets_the_next_open_card(queue, client, member_of):
    project, reviewer, tasks = queue
    samples = [t.pk for t in tasks[ReviewTaskReason.SAMPLE]]
    other = Client()
    other.force_login(member_of(project, Role.REVIEWER, "rob"))
    client.force_login(reviewer)
    verdict = reverse("labeling:review_verdict", args=[project.slug, samples[0]])

    # Given two reviewers on the same card, and the first one accepts it
    client.post(verdict, {"verdict": "accept", "reason": "sample"}, HTTP_HX_REQUEST="true")

    # When the second one rejects it a moment later
    answer = other.post(verdict, {"verdict": "reject", "reason": "sample"}, HTTP_HX_REQUEST="true")

    # Then the verdict is refused with who settled the card, and the next open card is shown, not "Nothing to review"
    html = answer.content.decode()
    assert answer.status_code == 400
    assert f"This task (#{samples[0]}) was already settled by {reviewer.get_username()}" in html
    assert "Your verdict was not saved; the next open card is below." in html
    assert f'data-task="{samples[1]}"' in html
    assert "Nothing to review here" not in html
    settled = tasks[ReviewTaskReason.SAMPLE][0]
    assert list(Review.objects.filter(annotation=settled.annotation).values_list("verdict", flat=True)) == ["accept"]

"""h50 review page: a verdict refused without JavaScript says why, and a link to a settled task says so."""

import re

import pytest
from django.urls import reverse

from labeling.models import Review, ReviewTask, ReviewTaskReason
from labeling.services.reviews import review_submit, review_task_open

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cat_dog_review, project_factory, label_class_factory):
    """Three items "ann" labeled cat, all sampled for audit; another project with its class "stranger"."""
    world = cat_dog_review(review_sample_rate=1.0, labeled=3)
    other = project_factory()
    stranger = label_class_factory(project=other, name="stranger", hotkey="1")
    return {**world, "other": other, "stranger": stranger}


def _text(response_or_html) -> str:
    html = response_or_html if isinstance(response_or_html, str) else response_or_html.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"verdict": "correct", "class_ids": "STRANGER"}, "Unknown class id(s) for this project"),
        ({"verdict": "correct"}, "A correction needs at least one class"),
        ({"verdict": "approve"}, "approve"),
    ],
)
def test_a_refused_verdict_without_htmx_shows_the_message_and_changes_nothing(client, world, data, message):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).order_by("id").first()
    data = {k: (str(world["stranger"].pk) if v == "STRANGER" else v) for k, v in data.items()}

    response = client.post(reverse("labeling:review_verdict", args=[project.slug, task.pk]), data, follow=True)

    assert response.status_code == 200
    text = _text(response)
    assert message in text
    assert f'data-task="{task.pk}"' in response.content.decode()  # the same card, to try again
    assert not Review.objects.exists()


def _settle_a_disagreement(world) -> ReviewTask:
    """A disagreement task on the first item, accepted by `rev`; the other items keep their open audit samples."""
    project = world["project"]
    task = review_task_open(project=project, item=world["items"][0], reason=ReviewTaskReason.DISAGREEMENT)
    review_submit(task=task, reviewer=world["rev"], verdict="correct", corrected_class_ids=[world["dog"].pk])
    return task


def test_a_link_to_a_settled_task_says_who_settled_it_and_keeps_to_the_requested_tab(client, world):
    """?reason=disagreement&task=<settled> showed an audit-sample card under the disagreement tab, with no word."""
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))  # the page's feed refresh runs first
    settled = _settle_a_disagreement(world)
    assert ReviewTask.objects.filter(done=False, reason=ReviewTaskReason.SAMPLE).exists()

    response = client.get(
        reverse("labeling:review", args=[project.slug]), {"reason": "disagreement", "task": settled.pk}
    )

    text = _text(response)
    assert response.status_code == 200
    assert re.search(
        rf"This task \(#{settled.pk}\) was already settled by rev at \d{{4}}-\d\d-\d\d \d\d:\d\d UTC "
        r"\(corrected to dog\)",
        text,
    )
    assert "Nothing to review here." in text  # the disagreement tab is empty: no audit sample instead
    assert "Audit sample" not in _text(_card_html(response))


def test_a_settled_link_moves_on_to_the_next_card_of_the_same_tab(client, world):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    settled = _settle_a_disagreement(world)
    waiting = review_task_open(project=project, item=world["items"][1], reason=ReviewTaskReason.DISAGREEMENT)

    response = client.get(
        reverse("labeling:review", args=[project.slug]), {"reason": "disagreement", "task": settled.pk}
    )

    assert "was already settled by rev" in _text(response)
    assert f'data-task="{waiting.pk}"' in response.content.decode()


def test_a_task_of_another_project_or_none_stays_404(client, world, item_factory):
    project = world["project"]
    client.force_login(world["rev"])
    foreign = review_task_open(project=world["other"], item=item_factory(project=world["other"]), reason="sample")
    for task_id in (foreign.pk, 999_999):
        response = client.get(reverse("labeling:review", args=[project.slug]), {"reason": "sample", "task": task_id})
        assert response.status_code == 404


def _card_html(response) -> str:
    html = response.content.decode()
    start = html.index('id="review-card"')
    return html[start : html.index("</section>", start)]


def test_a_link_to_an_open_task_of_another_tab_shows_it_under_its_own_tab(client, world):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    sample = ReviewTask.objects.filter(done=False, reason=ReviewTaskReason.SAMPLE).order_by("id").last()

    response = client.get(
        reverse("labeling:review", args=[project.slug]), {"reason": "disagreement", "task": sample.pk}
    )

    html = response.content.decode()
    assert f'data-task="{sample.pk}"' in html
    assert re.search(r'class="on" data-reason="sample"', html)  # the tab lit is the card's own
    assert not re.search(r'class="on" data-reason="disagreement"', html)

"""Project overview: the review figure counts what the review queue holds and links to it (h50 P11)."""

import re

import pytest
from django.urls import reverse

from labeling.models import ReviewTask, ReviewTaskReason, Role
from tests.factories import api_client, page_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project_factory, label_class_factory, item_factory, member_of):
    # Two annotators per image, every label audited: one disagreement and one audit sample per item (one open task
    # per item and reason).
    project = project_factory(annotations_per_item=2, review_sample_rate=1.0)
    cat = label_class_factory(project=project, name="cat", hotkey="1")
    dog = label_class_factory(project=project, name="dog", hotkey="2")
    ann, ann2 = member_of(project, Role.ANNOTATOR, "ann"), member_of(project, Role.ANNOTATOR, "ann2")
    items = [item_factory(project=project) for _ in range(3)]
    for item, (first, second) in zip(items, [(cat, dog), (cat, cat), (dog, dog)], strict=True):
        for user, label in ((ann, first), (ann2, second)):
            response = api_client(user).post(
                f"/api/projects/{project.slug}/annotations/",
                {"item_id": item.pk, "class_ids": [label.pk]},
                format="json",
            )
            assert response.status_code == 201
    return {"project": project, "ann": ann, "boss": member_of(project, Role.MANAGER, "boss")}


def _stat(html: str, stat_id: str) -> str:
    return re.sub(r"<[^>]+>", "", re.search(rf'<b id="{stat_id}">(.*?)</b>', html, re.S).group(1)).strip()


def test_overview_counts_the_open_review_tasks_the_review_page_counts(world):
    project, client = world["project"], page_client(world["boss"])
    assert ReviewTask.objects.filter(reason=ReviewTaskReason.SAMPLE, done=False).count() == 3

    overview = client.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()
    review = client.get(reverse("labeling:review", args=[project.slug])).content.decode()

    all_count = re.search(r'data-reason="">All <span class="count">(\d+)</span>', review).group(1)
    assert all_count == "4"
    assert _stat(overview, "stat-review-open") == all_count
    assert f'<a href="{reverse("labeling:review", args=[project.slug])}">4</a>' in overview
    assert "open review tasks" in overview
    # The tied item is a figure of its own, named for what it is.
    assert _stat(overview, "stat-review") == "1"
    assert "no label yet: annotators disagree" in overview
    assert "need review" not in overview


def test_an_annotator_sees_the_figure_without_a_link_to_a_page_they_cannot_open(world):
    project = world["project"]
    overview = page_client(world["ann"]).get(reverse("labeling:project_detail", args=[project.slug])).content.decode()

    assert _stat(overview, "stat-review-open") == "4"
    assert reverse("labeling:review", args=[project.slug]) not in overview

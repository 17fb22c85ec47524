"""Quality page, two annotators per image: a reviewer settling a disagreement judges every annotator's label on the
item, not only the "given" one the card showed (h50 P2)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.models import ReviewTask, ReviewTaskReason, Role, TaskType
from tests.factories import api_client, page_client

pytestmark = pytest.mark.django_db


def _row(html: str, username: str) -> tuple[str, str]:
    """(Reviewed, Accuracy (reviews)) of the annotator's row of the Annotators table, as the page shows them."""
    row = re.search(rf'<tr data-user="{username}">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    return cells[3], cells[4]


def _label(user, project, item, *classes) -> None:
    response = api_client(user).post(
        f"/api/projects/{project.slug}/annotations/",
        {"item_id": item.pk, "class_ids": [c.pk for c in classes]},
        format="json",
    )
    assert response.status_code == 201, response.content


def _settle(reviewer, project, item, verdict: str, *classes) -> None:
    """What the review page's card sends for the item's open disagreement task."""
    task = ReviewTask.objects.get(item=item, reason=ReviewTaskReason.DISAGREEMENT, done=False)
    response = page_client(reviewer).post(
        reverse("labeling:review_verdict", args=[project.slug, task.pk]),
        {"verdict": verdict, "class_ids": [c.pk for c in classes], "reason": "disagreement"},
    )
    assert response.status_code == 302
    assert ReviewTask.objects.get(pk=task.pk).done


@pytest.fixture
def team(project_factory, label_class_factory, item_factory, member_of):
    def make(task_type=TaskType.SINGLE, n_items=5):
        project = project_factory(annotations_per_item=2, review_sample_rate=0.0, task_type=task_type)
        classes = {n: label_class_factory(project=project, name=n, hotkey=str(i + 1)) for i, n in enumerate("abc")}
        return {
            "project": project,
            **classes,
            "good": member_of(project, Role.ANNOTATOR, "good"),
            "bad": member_of(project, Role.ANNOTATOR, "bad"),
            "rev": member_of(project, Role.REVIEWER, "rev"),
            "boss": member_of(project, Role.MANAGER, "boss"),
            "items": [item_factory(project=project) for _ in range(n_items)],
        }

    return make


def test_settling_disagreements_judges_both_annotators_on_the_quality_page(team):
    w = team()
    project, a, b, c, items = w["project"], w["a"], w["b"], w["c"], w["items"]
    # Given: "good" labels first, "bad" second, so each disagreement card's given label is bad's (the newest).
    answers = [  # good, bad, what the reviewer does
        (a, b, ("correct", a)),  # good right, bad wrong
        (b, a, ("correct", b)),  # good right, bad wrong
        (a, b, ("accept",)),  # bad's given label is true: good wrong, bad right
        (a, b, ("correct", c)),  # both wrong
        (b, a, ("reject",)),  # bad's label is wrong; good's (another class) is not judged
    ]
    for item, (good_label, bad_label, _) in zip(items, answers, strict=True):
        _label(w["good"], project, item, good_label)
        _label(w["bad"], project, item, bad_label)
    # When: the reviewer settles each disagreement through the review page.
    for item, (_, _, (verdict, *classes)) in zip(items, answers, strict=True):
        _settle(w["rev"], project, item, verdict, *classes)

    html = page_client(w["boss"]).get(reverse("labeling:quality", args=[project.slug])).content.decode()

    # Then: both annotators' labels on the settled items are judged.
    assert _row(html, "good") == ("4", "50%")
    assert _row(html, "bad") == ("5", "20%")
    assert "every annotator" in html  # the page says what a verdict judges


def test_a_multi_label_set_is_right_only_when_it_equals_the_settled_set(team):
    w = team(task_type=TaskType.MULTI, n_items=2)
    project, a, b, c, items = w["project"], w["a"], w["b"], w["c"], w["items"]
    _label(w["good"], project, items[0], a, b)
    _label(w["bad"], project, items[0], a)  # a subset of the truth: wrong
    _label(w["good"], project, items[1], a, c)
    _label(w["bad"], project, items[1], a, b, c)  # a superset of the truth: wrong
    _settle(w["rev"], project, items[0], "correct", a, b)
    _settle(w["rev"], project, items[1], "correct", a, c)

    html = page_client(w["boss"]).get(reverse("labeling:quality", args=[project.slug])).content.decode()

    assert _row(html, "good") == ("2", "100%")
    assert _row(html, "bad") == ("2", "0%")


def _page_queries(w) -> int:
    client = page_client(w["boss"])
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("labeling:quality", args=[w["project"].slug])).status_code == 200
    return len(queries)


def test_the_quality_page_reads_settled_items_in_a_bounded_number_of_queries(team):
    few, many = team(n_items=2), team(n_items=12)
    for w in (few, many):
        for item in w["items"]:
            _label(w["good"], w["project"], item, w["a"])
            _label(w["bad"], w["project"], item, w["b"])
            _settle(w["rev"], w["project"], item, "correct", w["c"])

    assert _page_queries(few) == _page_queries(many)

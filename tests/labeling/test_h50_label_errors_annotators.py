"""Suspected label errors name every annotator who gave the label (tester h50, P7): two annotators who agree are the
strongest evidence that a suspect is a false alarm. Also: the page after every suspect was settled."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from labeling.models import ResolvedLabel, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from training.models import LabelErrorSearch

pytestmark = pytest.mark.django_db


@pytest.fixture
def suspects(project_factory, label_class_factory, item_factory, member_of):
    """Three suspected "eight" labels the search's model calls "one": the first labeled 8 by ann and ann2 (they
    agree), the second 8 by ann and 5 by ann3, the third 8 by ann alone."""
    project = project_factory(annotations_per_item=2)
    eight, one, five = (label_class_factory(project=project, name=n) for n in ("8", "1", "5"))
    ann, ann2, ann3 = (member_of(project, Role.ANNOTATOR, n) for n in ("ann", "ann2", "ann3"))
    items = [item_factory(project=project) for _ in range(3)]
    for item in items:
        annotation_create(item=item, user=ann, class_ids=[eight.pk])
    annotation_create(item=items[0], user=ann2, class_ids=[eight.pk])
    annotation_create(item=items[1], user=ann3, class_ids=[five.pk])
    for item in items:  # the item's label is 8 (the disagreement settled that way, say)
        resolved, _ = ResolvedLabel.objects.get_or_create(item=item, project=project)
        resolved.classes.set([eight])
    ReviewTask.objects.filter(project=project).delete()
    tasks = [
        ReviewTask.objects.create(project=project, item=item, reason=ReviewTaskReason.LABEL_ERROR, score=0.9 - k / 10)
        for k, item in enumerate(items)
    ]
    LabelErrorSearch.objects.create(
        project=project, status="ok", labels=60, estimated_share=0.05, share_low=0.02, share_high=0.1, agreement=0.9,
        flagged=3, suspects={str(item.pk): [eight.pk, one.pk, 0.77, 0.1, 0.8, 0.1] for item in items},
    )  # fmt: skip
    return {"project": project, "items": items, "tasks": tasks, "reviewer": member_of(project, Role.REVIEWER, "rev")}


def _cells(html: str) -> dict[int, str]:
    """{item id: the text of its row's annotators cell}."""
    rows = re.findall(r'<tr data-item="(\d+)".*?<td class="annotators">(.*?)</td>', html, re.S)
    return {int(i): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for i, cell in rows}


def test_the_list_names_every_annotator_of_the_label_and_what_the_others_gave(client, suspects):
    client.force_login(suspects["reviewer"])

    html = client.get(reverse("labeling:review_label_errors", args=[suspects["project"].slug])).content.decode()

    agreed, disputed, alone = (item.pk for item in suspects["items"])
    cells = _cells(html)
    assert cells[agreed] == "ann, ann2 (2 gave it)"
    assert cells[disputed] == "ann ann3 gave 5"
    assert cells[alone] == "ann"


def test_the_list_reads_the_annotators_in_a_bounded_number_of_queries(
    client, suspects, item_factory, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(suspects["reviewer"])
    url = reverse("labeling:review_label_errors", args=[suspects["project"].slug])
    client.get(url)
    with CaptureQueriesContext(connection) as three:
        client.get(url)
    # Given 20 more suspects, each labeled by two annotators
    project = suspects["project"]
    search = LabelErrorSearch.objects.get(project=project)
    eight = project.classes.get(name="8")
    detail = next(iter(search.suspects.values()))
    for _ in range(20):
        item = item_factory(project=project)
        for name in ("ann", "ann2"):
            annotation_create(item=item, user=project.memberships.get(user__username=name).user, class_ids=[eight.pk])
        resolved, _ = ResolvedLabel.objects.get_or_create(item=item, project=project)
        resolved.classes.set([eight])
        ReviewTask.objects.create(project=project, item=item, reason=ReviewTaskReason.LABEL_ERROR, score=0.5)
        search.suspects[str(item.pk)] = detail
    search.save()
    # the page costs the same number of queries
    with django_assert_max_num_queries(len(three.captured_queries)):
        html = client.get(url).content.decode()
    assert html.count("(2 gave it)") == 21


def test_the_card_names_every_annotator_who_gave_the_label(client, suspects):
    client.force_login(suspects["reviewer"])
    url = reverse("labeling:review", args=[suspects["project"].slug])

    card = client.get(f"{url}?reason=label_error&task={suspects['tasks'][0].pk}").content.decode()

    line = re.search(r'by <b id="given-annotator">(\w+)</b>(.*?) · ', card, re.S)
    assert line is not None
    said = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", line[1] + line[2]))
    assert said in ("ann and ann2: 2 annotators gave this label", "ann2 and ann: 2 annotators gave this label")
    assert "Other annotators" not in card  # ann2 agreed: named beside the label, not as another answer


def test_after_every_suspect_is_settled_the_page_says_so(client, suspects):
    ReviewTask.objects.filter(project=suspects["project"]).update(done=True)
    client.force_login(suspects["reviewer"])

    html = client.get(reverse("labeling:review_label_errors", args=[suspects["project"].slug])).content.decode()

    assert "No open suspects: every one has been settled." in html
    assert "0 labels listed below" not in html

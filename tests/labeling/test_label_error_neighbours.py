"""What the review card and the label-error page say of a suspect's most similar labeled images."""

import re

import pytest
from django.urls import reverse

from labeling.models import ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from training.models import LabelErrorSearch

pytestmark = pytest.mark.django_db


def test_the_card_and_the_list_say_how_many_similar_images_carry_each_class(
    client, project_factory, label_class_factory, item_factory, member_of
):
    # Given a search that suspects a "cat" label: its model says "dog", as do 8 of the 10 most similar labeled images
    project = project_factory()
    cat, dog = (label_class_factory(project=project, name=n) for n in ("cat", "dog"))
    item = item_factory(project=project)
    annotation_create(item=item, user=member_of(project, Role.ANNOTATOR, "ann"), class_ids=[cat.pk])
    ReviewTask.objects.filter(project=project).delete()
    ReviewTask.objects.create(project=project, item=item, reason=ReviewTaskReason.LABEL_ERROR, score=0.9)
    LabelErrorSearch.objects.create(
        project=project, status="ok", labels=40, suspects={str(item.pk): [cat.pk, dog.pk, 0.91, 0.04, 0.8, 0.1]}
    )
    client.force_login(member_of(project, Role.REVIEWER, "rev"))

    # When the reviewer opens the card, and the list
    card = client.get(reverse("labeling:review", args=[project.slug]) + "?reason=label_error").content.decode()
    page = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()

    # Then both say it
    note = re.search(r'id="neighbour-support">(.*?)</span>', card, re.S)[1]
    expected = "Of the 10 most similar labeled images, 8 carry <b>dog</b> and 1 the given label."
    assert re.sub(r"\s+", " ", note) == expected
    assert "8 of 10 similar · 1 given" in page
    assert "at least 5 carry the model's class, at most 2 the given one" in page
    said = re.sub(r"\s+", " ", page)
    assert (
        "at least 5 times as probable as the given label (or all of the 10 most similar labeled images carry it)"
        in said
    )


def test_the_page_states_the_rule_the_search_applies():
    from training.ml import confident, label_search
    from training.ml.neighbours import NEIGHBOURS

    # "the 10 most similar labeled images ... at least 5 carry the model's class, at most 2 the given one"
    assert (NEIGHBOURS, confident.MIN_SUPPORT * 10, confident.MAX_GIVEN_SUPPORT * 10) == (10, 5, 2)
    # "at least 5 times as probable as the given label"
    assert label_search.MIN_ODDS == 5


def test_the_list_shows_the_top_200_disagreements_still_open_and_counts_them_all(
    client, project_factory, label_class_factory, item_factory, member_of
):
    # Given 205 suspected "cat" labels the search's model calls "dog", one of them since relabeled "dog"
    project = project_factory()
    cat, dog = (label_class_factory(project=project, name=n) for n in ("cat", "dog"))
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    items = [item_factory(project=project) for _ in range(205)]
    for item in items:
        annotation_create(item=item, user=annotator, class_ids=[cat.pk])
    ReviewTask.objects.filter(project=project).delete()
    ReviewTask.objects.bulk_create(
        ReviewTask(project=project, item=item, reason=ReviewTaskReason.LABEL_ERROR, score=1 - i / 1000)
        for i, item in enumerate(items)
    )
    LabelErrorSearch.objects.create(
        project=project, status="ok", labels=4000, estimated_share=0.05, share_low=0.04, share_high=0.06,
        agreement=0.9, suspects={str(item.pk): [cat.pk, dog.pk, 0.9, 0.05, 0.8, 0.1] for item in items},
    )  # fmt: skip
    items[0].resolved.classes.set([dog])  # the most suspect one, corrected elsewhere
    client.force_login(member_of(project, Role.REVIEWER, "rev"))

    page = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()

    # Then the table holds the next 200 by score, the count says 204, and the corrected item is not among them
    shown = [int(i) for i in re.findall(r'<tr data-item="(\d+)"', page)]
    assert shown == [item.pk for item in items[1:201]]
    assert "Showing the top 200 of 204." in page
    assert "204 labels listed below" in page

"""The overview's recent jobs card of a label-error search that judged nothing (too few labels) says so in the words
the label-errors page headlines, not "Nothing flagged: the estimate and the list are on the label-errors page" (there
is neither an estimate nor a list, and "Nothing flagged" reads as "the labels look fine")."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, Role
from labeling.services.annotations import annotation_create
from labeling.services.imports import item_create_from_bytes
from tests.training.test_label_errors_page import colour_png, search_from_page

pytestmark = pytest.mark.django_db


def _words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split())


def test_the_overview_says_a_search_with_too_few_labels_could_not_judge(
    client, project_factory, member_of, django_capture_on_commit_callbacks
):
    # Given a project with 4 labels in each of two classes (the search judges a class from 20 labels)
    project = project_factory(image_size=32)
    manager = member_of(project, Role.MANAGER, "boss")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    classes = [project.classes.create(name=n, order=k) for k, n in enumerate(["red", "blue"])]
    for k, rgb in enumerate([(220, 30, 30), (30, 30, 220)]):
        for j in range(4):
            item = item_create_from_bytes(project=project, name=f"{k}-{j}.png", data=colour_png(rgb, 100 * k + j))
            annotation_create(item=item, user=annotator, class_ids=[classes[k].pk])
    client.force_login(manager)

    # When a label-error search runs and the manager opens the label-errors page and the overview
    search_from_page(client, project, django_capture_on_commit_callbacks)
    assert Job.objects.get(kind=JobKind.LABEL_ERRORS).result["status"] == "too_few"
    page = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()
    headline = _words(re.search(r'<p class="headline" id="label-error-headline"[^>]*>(.*?)</p>', page, re.S).group(1))
    overview = client.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()
    card = _words(re.search(r'<p class="job-where">(.*?)</p>', overview, re.S).group(1))

    # Then the card says the page's headline: nothing is flagged because there are too few labels to judge
    assert headline.startswith("Nothing is flagged. Too few labels to judge: the search needs at least 20 labels")
    assert card == f"{headline} See the label-errors page."
    assert "Nothing flagged:" not in _words(overview)
    assert "the estimate and the list" not in _words(overview)

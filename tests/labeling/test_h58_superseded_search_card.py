"""The overview's card of a label-error search that ended after a newer one had (two searches at once after two quick
rounds: training.services.label_errors leaves the open suspects to the newer one) says its suspects are not listed,
not "7 suspected label errors listed: the estimate and the list are on the label-errors page", which shows the
newer search's list."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role

pytestmark = pytest.mark.django_db


def cards(client, project) -> list[str]:
    overview = client.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", "", c)).split())
        for c in re.findall(r'<p class="job-where">(.*?)</p>', overview, re.S)
    ]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ML_ENGINEER])
def test_the_card_of_a_superseded_search_says_the_list_is_the_newer_searchs(client, project_factory, member_of, role):
    project = project_factory()
    client.force_login(member_of(project, role, "someone"))
    result = {"status": "ok", "search": 4, "labels": 300, "suspects": 7}
    Job.objects.create(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED, done=1, total=1,
                       result={**result, "superseded_by": 5})  # fmt: skip

    [card] = cards(client, project)

    assert card.startswith("This search ended after a newer one had: its 7 suspects are not listed."), card
    assert "are the newer search's" in card
    assert "suspected label errors listed" not in card


def test_the_card_of_the_newest_search_still_says_its_list(client, project_factory, member_of):
    project = project_factory()
    client.force_login(member_of(project, Role.MANAGER, "boss"))
    Job.objects.create(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED, done=1, total=1,
                       result={"status": "ok", "search": 5, "labels": 300, "suspects": 1})  # fmt: skip

    [card] = cards(client, project)

    assert card == "1 suspected label error listed: the estimate and the list are on the label-errors page."

"""A refusal on the dataset exports page and on the model exports page (batch inference) is shown once: the form's
non-field errors were drawn by `{{ form.non_field_errors }}` and again by `{{ form.as_p }}`, two identical red
bullets."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Job, Role
from tests.factories import page_client

pytestmark = pytest.mark.django_db


def _error_lists(html: str) -> list[str]:
    """The text of each error list on the page, as a user reads the red bullets."""
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S)
    return [unescape(re.sub(r"<[^>]+>", " ", part)).strip() for part in found]


@pytest.mark.parametrize(
    ("filters", "matches"),
    [({"only_reviewed": "on"}, "only reviewed"), ({"min_annotators": "3"}, "min annotators 3")],
)
def test_the_dataset_exports_page_says_nothing_to_export_once(labeled_project, member_of, filters, matches):
    project, *_ = labeled_project
    client = page_client(member_of(project, Role.MANAGER))

    answer = client.post(
        reverse("labeling:exports", args=[project.slug]), {"format": "csv", "val_fraction": "0.1", **filters}
    )

    reason = f"Nothing to export from zoo: none of its 24 labeled items matches {matches}. Nothing was written."
    html = answer.content.decode()
    assert answer.status_code == 400
    assert _error_lists(html) == [reason]
    assert html.count(reason) == 1
    assert not Job.objects.exists()


def test_the_model_exports_page_says_an_inference_refusal_once(labeled_project, member_of):
    project, *_ = labeled_project
    client = page_client(member_of(project, Role.MANAGER))

    answer = client.post(reverse("training:model_exports", args=[project.slug]), {"version": ""})

    html = answer.content.decode()
    [refusal] = _error_lists(html)
    assert refusal
    assert html.count(refusal) == 1
    assert not Job.objects.exists()

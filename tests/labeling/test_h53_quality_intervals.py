"""Quality page (tester h53 P13): each annotator's accuracy against reviews carries its n and 95 % Wilson interval,
in the Annotators table and in the chart, so 0 % from one reviewed label reads as [0 %, 79 %], not as a verdict."""

import re

import pytest
from django.urls import reverse

from labeling.models import Role
from tests.factories import page_client
from tests.labeling.test_h50_quality_settled_items import _label, _settle

pytestmark = pytest.mark.django_db


def _cell(html: str, username: str, css: str) -> str:
    row = re.search(rf'<tr data-user="{username}">(.*?)</tr>', html, re.S).group(1)
    cell = re.search(rf'<td class="num {css}">(.*?)</td>', row, re.S).group(1)
    return re.sub(r"<[^>]+>", "", cell).strip()


def _chart(html: str) -> str:
    """The SVG of the "Accuracy against reviews" card."""
    return re.search(r"<h2>Accuracy against reviews</h2>(.*?)</svg>", html, re.S).group(1)


def test_accuracy_against_reviews_shows_its_n_and_wilson_interval(
    project_factory, label_class_factory, item_factory, member_of
):
    # Given two annotators who disagree on one image, and a reviewer who settles it for "good"
    project = project_factory(annotations_per_item=2, review_sample_rate=0.0)
    a = label_class_factory(project=project, name="a", hotkey="1")
    b = label_class_factory(project=project, name="b", hotkey="2")
    good, bad = member_of(project, Role.ANNOTATOR, "good"), member_of(project, Role.ANNOTATOR, "bad")
    reviewer, boss = member_of(project, Role.REVIEWER, "rev"), member_of(project, Role.MANAGER, "boss")
    item = item_factory(project=project)
    _label(good, project, item, a)
    _label(bad, project, item, b)
    _settle(reviewer, project, item, "correct", a)

    # When the manager opens the quality page
    html = page_client(boss).get(reverse("labeling:quality", args=[project.slug])).content.decode()

    # Then each accuracy in the table has its interval and n beside it
    assert _cell(html, "bad", "review-accuracy") == "0%"
    assert _cell(html, "bad", "review-interval") == "[0 %, 79 %] n = 1"
    assert _cell(html, "good", "review-interval") == "[21 %, 100 %] n = 1"
    # ... and the chart draws each interval as a whisker and says it beside the bar
    chart = _chart(html)
    assert "0.00 [0.00, 0.79] n = 1" in chart
    assert "1.00 [0.21, 1.00] n = 1" in chart
    assert chart.count('class="whisker"') == 2
    assert "95 % interval (Wilson)" in html

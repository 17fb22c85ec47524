"""A round's new version goes live unless it is clearly worse than the active one on the holdout: its accuracy's
95 % interval lies wholly below the active version's accuracy. Such a version is kept and listed, not active, and
the model page says why; an ML engineer can still make it active by hand."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Item, Role
from tests.factories import api_client, page_client
from tests.training.fake_rounds import holdout_metrics, train, two_class_project
from training.models import ModelVersion, RunStatus, TrainingRun
from training.services.rounds import model_version_activate

pytestmark = pytest.mark.django_db


@pytest.fixture
def digits(project_factory, label_class_factory, item_factory, member_of, settings):
    """Two classes, 6 labeled train items, 2 holdout items, 4 open items, and an active v4 at 15 of 21 (0.714)."""
    project, classes = two_class_project(project_factory, label_class_factory, item_factory, member_of, settings)
    old_run = TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED)
    ModelVersion.objects.create(
        project=project, run=old_run, number=4, artifact_path="x", architecture="resnet10t",
        class_ids=[c.pk for c in classes], metrics=holdout_metrics(15, 21), active=True,
    )  # fmt: skip
    return project


def versions(project) -> dict[int, bool]:
    return dict(ModelVersion.objects.filter(project=project).values_list("number", "active"))


def test_a_version_far_worse_on_the_holdout_is_kept_but_not_made_active(digits, tmp_path, monkeypatch, member_of):
    priorities = dict(Item.objects.filter(project=digits).values_list("pk", "priority"))
    summary = train(digits, holdout_metrics(1, 21), tmp_path, monkeypatch)  # 0.048, interval 0.008 to 0.227

    assert versions(digits) == {4: True, 5: False}
    reason = (
        "not made active: holdout accuracy 0.048 (0.01 to 0.23, n 21) is clearly below v4's 0.714 (0.50 to 0.86) on "
        "its own holdout of 21 items: the two 95 % intervals do not overlap"
    )
    assert ModelVersion.objects.get(project=digits, number=5).metrics["not_made_active"] == reason
    assert summary["not_made_active"] == reason
    listed = api_client(member_of(digits, Role.ML_ENGINEER)).get(f"/api/projects/{digits.slug}/models/").json()
    rows = {v["number"]: v for v in (listed["results"] if isinstance(listed, dict) else listed)}
    assert (rows[4]["active"], rows[5]["active"]) == (True, False)
    assert rows[5]["metrics"]["not_made_active"] == reason
    # The queue keeps the active version's ranking.
    assert dict(Item.objects.filter(project=digits).values_list("pk", "priority")) == priorities


def test_a_slightly_worse_version_whose_interval_reaches_the_active_figure_is_made_active(
    digits, tmp_path, monkeypatch
):
    summary = train(digits, holdout_metrics(13, 21), tmp_path, monkeypatch)  # 0.619, interval 0.41 to 0.79

    assert versions(digits) == {4: False, 5: True}
    assert "not_made_active" not in ModelVersion.objects.get(project=digits, number=5).metrics
    assert "not_made_active" not in summary


def test_the_model_page_shows_why_a_version_is_not_active(digits, tmp_path, monkeypatch, member_of):
    train(digits, holdout_metrics(1, 21), tmp_path, monkeypatch)

    html = page_client(member_of(digits, Role.ML_ENGINEER)).get(reverse("training:model", args=[digits.slug]))
    text = html.content.decode()
    row = text.split('id="version-5"')[1].split("</tr>")[0]
    assert "Not made active: holdout accuracy 0.048 (0.01 to 0.23, n 21) is clearly below v4&#x27;s 0.714" in row
    assert "<strong>active</strong>" in text.split('id="version-4"')[1].split("</tr>")[0]


def test_a_held_back_version_can_still_be_made_active_by_hand(digits, tmp_path, monkeypatch, member_of):
    train(digits, holdout_metrics(1, 21), tmp_path, monkeypatch)
    engineer = page_client(member_of(digits, Role.ML_ENGINEER))
    annotator = page_client(member_of(digits, Role.ANNOTATOR))
    url = reverse("training:version_activate", args=[digits.slug, 5])

    # An annotator may not, and a version the project does not have changes nothing
    assert annotator.post(url).status_code == 403
    missing = engineer.post(reverse("training:version_activate", args=[digits.slug, 99]), follow=True)
    assert "No model version v99 in this project. Nothing changed." in missing.content.decode()
    assert versions(digits) == {4: True, 5: False}

    # The engineer presses "make active" by v5 on the model page
    page = engineer.get(reverse("training:model", args=[digits.slug])).content.decode()
    assert f'action="{url}"' in page.split('id="version-5"')[1].split("</tr>")[0]
    done = engineer.post(url, follow=True).content.decode()

    assert versions(digits) == {4: False, 5: True}
    assert "v5 is now the active version" in done
    row = done.split('id="version-5"')[1].split("</tr>")[0]
    assert "<strong>active</strong>" in row
    assert "Not made active" not in row
    assert "make active" in done.split('id="version-4"')[1].split("</tr>")[0]


def test_the_service_makes_a_version_active(digits, tmp_path, monkeypatch):
    train(digits, holdout_metrics(1, 21), tmp_path, monkeypatch)

    model_version_activate(version=ModelVersion.objects.get(project=digits, number=5))

    assert versions(digits) == {4: False, 5: True}


def listed_versions(project, member_of) -> dict[int, dict]:
    listed = api_client(member_of(project, Role.ML_ENGINEER, "eng")).get(f"/api/projects/{project.slug}/models/")
    body = listed.json()
    return {v["number"]: v for v in (body["results"] if isinstance(body, dict) else body)}


@pytest.mark.parametrize("stored_interval", [True, False], ids=["interval stored", "Wilson from n"])
def test_a_version_measured_on_many_items_goes_live_against_a_perfect_figure_on_two(
    digits, tmp_path, monkeypatch, member_of, stored_interval
):
    # Given the active v4 stored 1.000 on its own holdout of 2 items (interval 0.34 to 1.00), the demo's v1, and
    # no figure of it on today's holdout (no holdout predictions, no checkpoint)
    perfect = holdout_metrics(2, 2) if stored_interval else {"n": 2, "multi_label": False, "accuracy": 1.0}
    ModelVersion.objects.filter(project=digits, number=4).update(metrics=perfect)

    # When a round's v5 measures 0.853 on 34 items (interval 0.70 to 0.94: wholly below 1.000, inside 0.34 to 1.00)
    summary = train(digits, holdout_metrics(29, 34), tmp_path, monkeypatch)

    # Then v5 goes live: the intervals overlap
    assert "not_made_active" not in summary
    rows = listed_versions(digits, member_of)
    assert (rows[4]["active"], rows[5]["active"]) == (False, True)
    assert "not_made_active" not in rows[5]["metrics"]


def test_a_clearly_worse_version_is_still_held_back_against_a_perfect_figure_on_two(
    digits, tmp_path, monkeypatch, member_of
):
    ModelVersion.objects.filter(project=digits, number=4).update(metrics=holdout_metrics(2, 2))

    # When v5 measures 0.088 on 34 items (interval 0.03 to 0.23, wholly below 0.34)
    train(digits, holdout_metrics(3, 34), tmp_path, monkeypatch)

    # Then it is held back, and the reason names the rule
    rows = listed_versions(digits, member_of)
    assert (rows[4]["active"], rows[5]["active"]) == (True, False)
    assert rows[5]["metrics"]["not_made_active"] == (
        "not made active: holdout accuracy 0.088 (0.03 to 0.23, n 34) is clearly below v4's 1.000 (0.34 to 1.00) on "
        "its own holdout of 2 items: the two 95 % intervals do not overlap"
    )

"""The label-quality page of a project with 130 classes: the per-class kappa chart stays legible."""

from __future__ import annotations

import random

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import LabelClass, Role
from labeling.services.annotations import annotation_create

pytestmark = pytest.mark.django_db


def test_the_kappa_chart_of_130_classes_draws_the_20_least_agreed_and_the_table_lists_all(
    project_factory, item_factory, member_of
):
    # Given 130 classes, every item labeled by two annotators who disagree more on some classes than others
    project = project_factory(slug="clipart", annotations_per_item=2, holdout_fraction=0.0)
    classes = [LabelClass.objects.create(project=project, name=f"class {n:03d}", order=n) for n in range(130)]
    first, second = member_of(project, Role.ANNOTATOR, "ann"), member_of(project, Role.ANNOTATOR, "bob")
    rng = random.Random(3)
    for n in range(390):
        item = item_factory(project=project)
        given = classes[n % 130]
        annotation_create(item=item, user=first, class_ids=[given.pk])
        # Classes with a higher number get more disagreement.
        other = given if rng.random() > given.order / 200 else classes[(given.order + 1) % 130]
        annotation_create(item=item, user=second, class_ids=[other.pk])
    reviewer = Client()
    reviewer.force_login(member_of(project, Role.REVIEWER, "rita"))

    # When the reviewer opens the label-quality page
    response = reviewer.get(reverse("labeling:quality", args=[project.slug]))

    # Then the chart draws 20 bars, the lowest kappas, and says so; the table has a row per class
    assert response.status_code == 200
    report, chart = response.context["report"], response.context["class_chart"]
    kappas = sorted(c.kappa for c in report.classes if c.kappa is not None)
    assert len(chart["bars"]) == 20
    drawn = sorted(float(b["text"]) for b in chart["bars"])
    assert drawn == pytest.approx(kappas[:20], abs=0.01)
    assert "20 lowest of 130" in chart["title"]
    assert len(report.classes) == 130

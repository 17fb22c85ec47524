"""demo_setup: users, memberships and the digits project; a second run changes nothing and imports nothing."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from labeling.models import Item, ItemState, Job, LabelClass, Membership, Project, ResolvedLabel, Role

pytestmark = pytest.mark.django_db


def test_demo_setup_is_idempotent(tmp_path, capsys):
    call_command("demo_setup", "--dir", str(tmp_path), "--limit", "100")
    first = capsys.readouterr().out
    assert "manager     / labelloop-demo" in first
    project = Project.objects.get(slug="digits")
    assert Item.objects.filter(project=project).count() == 100
    assert list(LabelClass.objects.filter(project=project).values_list("name", "hotkey")) == [
        (str(d), str(d)) for d in range(10)
    ]
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"manager": Role.MANAGER, "annotator": Role.ANNOTATOR, "reviewer": Role.REVIEWER,
                     "mlengineer": Role.ML_ENGINEER}  # fmt: skip
    # Five seed labels per class (what the cross-validated estimate needs), from the truth file; the rest stays
    # for annotators.
    truth = dict(csv.reader((tmp_path / "digits_truth.csv").open()))
    labeled = ResolvedLabel.objects.filter(project=project).select_related("item")
    assert sorted(Counter(r.classes.get().name for r in labeled).values()) == [5] * 10
    assert all(truth[r.item.original_name] == r.classes.get().name for r in labeled)
    assert Item.objects.filter(project=project, state=ItemState.UNLABELED).count() == 50
    assert get_user_model().objects.get(username="annotator").check_password("labelloop-demo")

    call_command("demo_setup", "--dir", str(tmp_path), "--limit", "100")
    assert "nothing to import" in capsys.readouterr().out
    assert Item.objects.filter(project=project).count() == 100
    assert Job.objects.filter(project=project).count() == 1
    assert Project.objects.count() == 1
    assert LabelClass.objects.filter(project=project).count() == 10

"""Right-to-left overrides in names: "x\u202etxt.exe" showed as "xexe.txt", and on a page that joins class names the
override reversed every name after it. New names are refused; names joined on one line are isolated one by one."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from labeling.models import LabelClass, Role
from labeling.selectors.classes import class_path_parse
from labeling.services.projects import label_class_create

pytestmark = pytest.mark.django_db

OVERRIDE = "x\u202etxt.exe"


def test_a_class_name_with_a_direction_override_is_refused_everywhere(project, member_of):
    api = APIClient()
    api.force_authenticate(member_of(project, Role.MANAGER))
    answer = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": OVERRIDE}, format="json")
    assert answer.status_code == 400
    assert "right-to-left override or other direction-control character" in str(answer.json())
    with pytest.raises(ValueError, match="direction-control"):
        class_path_parse(f"animals/{OVERRIDE}")  # a labels CSV's class path
    with pytest.raises(ValidationError, match="direction-control"):
        label_class_create(project=project, name="cat\u2067")
    assert not LabelClass.objects.filter(project=project).exists()
    # A right-to-left script's own names are fine
    assert label_class_create(project=project, name="חתול").name == "חתול"


def test_names_on_one_line_are_isolated_so_an_override_stays_in_its_name(project, member_of, client):
    # Given 40 classes with no rated label, one of them stored with an override before such names were refused
    LabelClass.objects.create(project=project, name=OVERRIDE, order=0)
    for n in range(40):
        label_class_create(project=project, name=f"class {n}")
    client.force_login(member_of(project, Role.REVIEWER))

    html = client.get(reverse("labeling:quality", args=[project.slug])).content.decode()

    # Then each name on the "no label yet" line sits in its own <bdi>, the override inside its own
    line = re.search(r'id="classes-unrated">(.*?)</p>', html, re.S).group(1)
    assert f"<bdi>{OVERRIDE}</bdi>" in line
    assert "<bdi>class 0</bdi>, <bdi>class 1</bdi>" in line
    assert line.count("<bdi>") == 30

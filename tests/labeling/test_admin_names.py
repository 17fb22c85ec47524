"""The Django admin names every model in plain English, plural included: "Label classes" and "Serving settings", not
Django's default of the name plus "s" ("Label classs", "Serving settingss")."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib import admin
from django.urls import reverse

from labeling.models import Project
from serving.models import ServingSettings
from tests.factories import page_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(user_factory):
    return page_client(user_factory(is_staff=True, is_superuser=True))


def _text(response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_admin_index_names_the_models_in_plain_plurals(superuser):
    # Given a superuser on the admin's index page
    text = _text(superuser.get(reverse("admin:index")))

    # Then the sections list the models by their right plurals
    assert "Label classes" in text
    assert "Serving settings" in text
    assert "API keys" in text
    assert "classs" not in text
    assert "settingss" not in text


def test_serving_settings_list_counts_in_the_right_plural(superuser, project_factory):
    # Given one project's serving settings
    ServingSettings.objects.create(project=project_factory())

    # When the superuser opens their admin list
    text = _text(superuser.get(reverse("admin:serving_servingsettings_changelist")))

    # Then it counts and offers to delete "serving settings"
    assert "1 serving settings" in text
    assert "settingss" not in text


def test_no_registered_model_has_a_doubled_s_plural():
    # Every model the admin lists: its plural never ends in a doubled "s" the default makes of a name in "s"
    plurals = {model.__name__: str(model._meta.verbose_name_plural) for model in admin.site._registry}
    assert not [name for name, plural in plurals.items() if plural.endswith("ss")], plurals
    assert Project._meta.verbose_name_plural == "projects"

"""The Django admin's project page holds backbone weights to the settings page's rule: a menu of the same choices
(bundled, hub, none, registered weights, the checkpoints in LABELLOOP_BACKBONE_WEIGHTS, the project's own value),
"hub" unavailable while LABELLOOP_MODEL_HUB is off, and the same refusals in the same words; a refused save changes
nothing."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.forms.models import model_to_dict
from django.test import Client, override_settings
from django.urls import reverse

from labeling.admin import ProjectAdminForm
from labeling.forms import ProjectSettingsForm
from labeling.models import Project
from tests.factories import admin_change_post

pytestmark = pytest.mark.django_db

HUB_REFUSAL = "The model hub is off on this deployment (LABELLOOP_MODEL_HUB=off)"


@pytest.fixture
def staff(user_factory) -> Client:
    client = Client()
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def change_url(project) -> str:
    return reverse("admin:labeling_project_change", args=[project.pk])


def stored(project) -> dict:
    return model_to_dict(Project.objects.get(pk=project.pk))


def page_refusal(project, value: str) -> list[str]:
    """What the settings page says about backbone weights `value` for `project`."""
    form = ProjectSettingsForm(instance=project, data={"backbone_weights": value})
    form.is_valid()
    return form.errors["backbone_weights"]


def weights_menu(html: str) -> dict[str, str]:
    """The admin's backbone weights menu: option value -> the option's tag and label."""
    select = re.search(r'<select name="backbone_weights".*?</select>', html, flags=re.S)
    assert select, "the backbone weights field is not a menu"
    return {
        unescape(value): tag
        for tag, value in (
            (m.group(0), m.group(1)) for m in re.finditer(r'<option value="([^"]*)"[^>]*>[^<]*</option>', select[0])
        )
    }


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("hub", HUB_REFUSAL),
        ("/etc/passwd", "Choose one of the listed weights; other files cannot be used."),
        ("/srv/models/not-listed.pth", "Choose one of the listed weights; other files cannot be used."),
    ],
)
def test_the_admin_refuses_weights_the_settings_page_refuses_and_saves_nothing(project, staff, value, said):
    # Given a staff user on the admin's change page of a project on bundled weights, the model hub off (the default)
    before = stored(project)

    # When they save it with those weights and a new name beside them
    response = admin_change_post(staff, project, name="Renamed", backbone_weights=value)

    # Then the page comes back with the settings page's own refusal on the weights, and nothing is stored
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["backbone_weights"]
    assert errors["backbone_weights"] == page_refusal(project, value)
    assert said in errors["backbone_weights"][0]
    assert errors["backbone_weights"][0] in unescape(response.content.decode())
    assert stored(project) == before


def test_the_admin_shows_the_settings_page_menu_with_hub_unavailable(project, staff, settings):
    # Given a checkpoint an administrator listed on the workers
    settings.LABELLOOP_BACKBONE_WEIGHTS = ["/srv/models/listed.pth"]

    # When staff open the project's change page
    menu = weights_menu(staff.get(change_url(project)).content.decode())

    # Then its weights are a menu of the page's choices, "hub" shown but disabled, saying why
    assert list(menu) == ["bundled", "hub", "none", "/srv/models/listed.pth"]
    assert " disabled" in menu["hub"]
    assert "unavailable: LABELLOOP_MODEL_HUB is off" in menu["hub"]
    assert "selected" in menu["bundled"]


@pytest.mark.parametrize("value", ["none", "/srv/models/listed.pth"])
def test_the_admin_saves_weights_the_settings_page_accepts(project, staff, settings, value):
    settings.LABELLOOP_BACKBONE_WEIGHTS = ["/srv/models/listed.pth"]

    response = admin_change_post(staff, project, name="Renamed", backbone_weights=value)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert (stored(project)["name"], stored(project)["backbone_weights"]) == ("Renamed", value)


@override_settings(LABELLOOP_MODEL_HUB=True)
def test_with_the_hub_on_the_admin_saves_hub(project, staff):
    response = admin_change_post(staff, project, backbone_weights="hub")

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert stored(project)["backbone_weights"] == "hub"


def test_a_project_already_on_hub_keeps_it_and_saves_its_other_settings_in_the_admin(project_factory, staff):
    # Given a project set to "hub" before the hub was turned off
    project = project_factory(backbone_weights="hub")

    # When staff open its change page and save another setting, the weights left as they are
    menu = weights_menu(staff.get(change_url(project)).content.decode())
    response = admin_change_post(staff, project, retrain_every=50)

    # Then its value is selectable and selected, and the other setting is saved with the weights kept
    assert "disabled" not in menu["hub"]
    assert "selected" in menu["hub"]
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert (stored(project)["backbone_weights"], stored(project)["retrain_every"]) == ("hub", 50)


def test_the_admin_add_page_refuses_hub_for_a_new_project(staff):
    data = {"name": "Birds", "slug": "birds", "task_type": "single", "backbone_weights": "hub", "_save": "Save"}
    data.update({k: v for k, v in ProjectAdminForm().initial.items() if k not in data and v not in (None, False)})

    response = staff.post(reverse("admin:labeling_project_add"), data)

    assert response.status_code == 200
    assert HUB_REFUSAL in response.context["adminform"].form.errors["backbone_weights"][0]
    assert not Project.objects.exists()

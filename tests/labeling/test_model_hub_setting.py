"""Backbone weights "hub" where the workers run offline (LABELLOOP_MODEL_HUB off, the default): the settings page,
POST /api/projects/ and `manage.py project_create` refuse it with a message naming the setting and what to choose
instead, and change nothing; with the setting on they take it; a project already on "hub" keeps it, is told its
runs will fail, and can still save its other settings."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from html import unescape

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse

from labeling.forms import ProjectSettingsForm
from labeling.models import Project, Role
from tests.factories import page_client, token_client

pytestmark = pytest.mark.django_db

REFUSAL = "The model hub is off on this deployment (LABELLOOP_MODEL_HUB=off)"
CHOOSE = "Choose bundled or registered weights"
WARNING = "This project's backbone weights come from the model hub, which is off on this deployment"


def settings_url(project) -> str:
    return reverse("labeling:project_settings", args=[project.slug])


def settings_post(client, project, **changes):
    data = {k: v for k, v in ProjectSettingsForm(instance=project).initial.items() if v is not None}
    for key in ("flip_average", "preselect_suggestion"):  # an unticked checkbox is absent from the POST
        if not data.get(key):
            data.pop(key, None)
    data.update(changes)
    return client.post(settings_url(project), {**data, "action": "settings"})


def page_text(response) -> str:
    return unescape(response.content.decode())


def hub_option(html: str) -> str:
    select = re.search(r'<select name="backbone_weights".*?</select>', html, flags=re.S).group(0)
    return re.search(r'<option value="hub"[^>]*>[^<]*</option>', select).group(0)


def test_the_default_is_off_in_every_settings_module():
    assert settings.LABELLOOP_MODEL_HUB is False


def test_off_the_page_shows_hub_unavailable_and_refuses_it_changing_nothing(project, member_of):
    # Given a manager of a project on bundled weights, on a deployment with the hub off (the default)
    manager = page_client(member_of(project, Role.MANAGER))

    # When they open the settings page, then choose "hub" (a request a browser would not send for a disabled
    # option; a script or an old page can) along with another change
    page = manager.get(settings_url(project))
    answer = settings_post(manager, project, backbone_weights="hub", retrain_every=77)

    # Then the choice is there but disabled, saying why
    option = hub_option(page_text(page))
    assert " disabled" in option
    assert "unavailable: LABELLOOP_MODEL_HUB is off" in option
    # and the save is refused with the setting named and the alternatives, and nothing is saved
    assert answer.status_code == 200
    assert REFUSAL in page_text(answer)
    assert CHOOSE in page_text(answer)
    project.refresh_from_db()
    assert (project.backbone_weights, project.retrain_every) == ("bundled", Project().retrain_every)


@override_settings(LABELLOOP_MODEL_HUB=True)
def test_on_the_page_offers_hub_and_saves_it(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))

    option = hub_option(page_text(manager.get(settings_url(project))))
    answer = settings_post(manager, project, backbone_weights="hub")

    assert "disabled" not in option
    assert answer.status_code == 302
    project.refresh_from_db()
    assert project.backbone_weights == "hub"


def test_a_project_already_on_hub_is_warned_and_still_saves_its_other_settings(project_factory, member_of):
    # Given a project set to "hub" before the setting existed (or while it was on)
    project = project_factory(backbone_weights="hub")
    manager = page_client(member_of(project, Role.MANAGER))

    # When its manager opens the settings page and saves another setting, the weights left as they are
    page = page_text(manager.get(settings_url(project)))
    answer = settings_post(manager, project, retrain_every=50)

    # Then the page says plainly that its runs will fail, the current choice stays selectable and selected
    assert WARNING in page
    assert "LABELLOOP_MODEL_HUB=on" in page
    option = hub_option(page)
    assert "disabled" not in option
    assert "selected" in option
    # and the other setting is saved, the weights kept
    assert answer.status_code == 302
    project.refresh_from_db()
    assert (project.backbone_weights, project.retrain_every) == ("hub", 50)
    # once it moves to bundled weights, the warning is gone
    settings_post(manager, project, backbone_weights="bundled")
    assert WARNING not in page_text(manager.get(settings_url(project)))


@override_settings(LABELLOOP_MODEL_HUB=True)
def test_with_the_hub_on_a_hub_project_has_no_warning(project_factory, member_of):
    project = project_factory(backbone_weights="hub")
    manager = page_client(member_of(project, Role.MANAGER))

    assert WARNING not in page_text(manager.get(settings_url(project)))


def test_a_bundled_mismatch_does_not_offer_hub_while_it_is_off(project_factory, member_of):
    project = project_factory(backbone="resnet18", backbone_weights="none")
    manager = page_client(member_of(project, Role.MANAGER))

    answer = page_text(settings_post(manager, project, backbone_weights="bundled"))

    assert 'Bundled weights exist only for tf_efficientnet_lite0 and tf_efficientnet_lite2; use "none" or ' in answer
    assert '"hub"' not in answer.split("Bundled weights exist only")[1].split("</")[0]


@pytest.fixture
def creator(user_factory, allow_project_creation):
    return allow_project_creation(user_factory(username="creator"))


def test_off_the_api_refuses_hub_for_a_new_project_and_creates_nothing(creator):
    answer = token_client(creator).post("/api/projects/", {"name": "Birds", "backbone_weights": "hub"}, format="json")

    assert answer.status_code == 400, answer.content
    said = " ".join(answer.json()["backbone_weights"])
    assert REFUSAL in said
    assert CHOOSE in said
    assert not Project.objects.exists()


@override_settings(LABELLOOP_MODEL_HUB=True)
def test_on_the_api_creates_a_project_on_hub(creator):
    answer = token_client(creator).post("/api/projects/", {"name": "Birds", "backbone_weights": "hub"}, format="json")

    assert answer.status_code == 201, answer.content
    assert Project.objects.get(slug="birds").backbone_weights == "hub"


def test_off_the_command_refuses_hub_and_creates_nothing(user_factory):
    user_factory(username="maria")

    with pytest.raises(CommandError) as refused:
        call_command("project_create", "Birds", "--owner", "maria", "--backbone-weights", "hub", stdout=io.StringIO())

    assert f"backbone_weights: {REFUSAL}" in str(refused.value)
    assert not Project.objects.exists()


@override_settings(LABELLOOP_MODEL_HUB=True)
def test_on_the_command_creates_a_project_on_hub(user_factory):
    user_factory(username="maria")

    call_command("project_create", "Birds", "--owner", "maria", "--backbone-weights", "hub", stdout=io.StringIO())

    assert Project.objects.get(slug="birds").backbone_weights == "hub"


def _setting_read_with(value: str) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(repr(settings.LABELLOOP_MODEL_HUB))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "LABELLOOP_MODEL_HUB": value}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=env, capture_output=True, text=True, timeout=120, cwd=settings.BASE_DIR,
    )  # fmt: skip


@pytest.mark.parametrize(("value", "read"), [("on", "True"), ("off", "False"), ("true", "True"), ("0", "False")])
def test_the_setting_reads_on_or_off_from_the_environment(value, read):
    done = _setting_read_with(value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == read


def test_a_misspelt_setting_stops_the_process_naming_it():
    done = _setting_read_with("enabled")
    assert done.returncode != 0
    assert "LABELLOOP_MODEL_HUB is on or off, not 'enabled'" in done.stderr

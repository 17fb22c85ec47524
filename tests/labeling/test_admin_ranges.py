"""The Django admin's project change form holds the project settings to the settings page's ranges: staff cannot store
an image size, annotators per image, retraining cadence, rate or GPU count that the page refuses (the worker and the
queue rely on those ranges), and the refusal says the same as the page."""

from __future__ import annotations

from html import unescape

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from labeling.forms import ProjectSettingsForm
from labeling.models import Project
from tests.factories import admin_change_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(user_factory) -> Client:
    client = Client()
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def stored(project) -> dict:
    return model_to_dict(Project.objects.get(pk=project.pk))


def page_refusal(project, field: str, value) -> list[str]:
    """What the settings page says about `value` for `field`."""
    form = ProjectSettingsForm(instance=project, data={field: value})
    form.is_valid()
    return form.errors[field]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("image_size", 8, "choose an image size from 32 to 512 pixels."),
        ("image_size", 32767, "choose an image size from 32 to 512 pixels."),
        ("annotations_per_item", 0, "choose from 1 to 20."),
        ("annotations_per_item", 1000, "choose from 1 to 20."),
        ("retrain_every", 0, "A run needs at least one new label to learn from: choose from 1 to 1,000,000."),
        ("min_labels_to_train", 1, "A model needs at least two labeled images to learn from: choose from 2 to"),
        ("gpus", 65, "less than or equal to 64"),
        ("review_sample_rate", 1.5, "less than or equal to 1"),
        ("holdout_fraction", 0.995, "less than or equal to 0.99"),
    ],
)
def test_the_admin_refuses_a_setting_out_of_range_as_the_page_does_and_saves_nothing(
    project, staff, field, value, message
):
    # Given a staff user on the admin's change page of a project with default settings
    before = stored(project)

    # When they save it with one setting out of range and a new name beside it
    response = admin_change_post(staff, project, name="Renamed", **{field: value})

    # Then the form comes back with the page's own refusal on that field, and nothing is stored, the name included
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert errors[field] == page_refusal(project, field, value)
    assert message in errors[field][0]
    assert errors[field][0] in unescape(response.content.decode())
    assert stored(project) == before


def test_the_admin_saves_settings_in_range(project, staff):
    response = admin_change_post(
        staff, project, image_size=512, annotations_per_item=20, retrain_every=1, min_labels_to_train=2, gpus=2
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    after = stored(project)
    assert (after["image_size"], after["annotations_per_item"], after["retrain_every"]) == (512, 20, 1)
    assert (after["min_labels_to_train"], after["gpus"]) == (2, 2)

"""The Django admin's project change form holds backbone and weights to the settings page's pairing rules: "bundled"
only for the backbones that ship weights (EfficientNet-Lite0 and Lite2), registered weights only with their own
architecture as the backbone. A change that breaks either is refused in the page's words and nothing is saved."""

from __future__ import annotations

from html import unescape

import pytest
from django.forms.models import model_to_dict

from labeling.constants import registered_weights_value
from labeling.forms import ProjectSettingsForm
from labeling.models import Project
from tests.factories import admin_change_post, page_client
from training.models import BackboneWeights

pytestmark = pytest.mark.django_db

BUNDLED_REFUSAL = (
    'Bundled weights exist only for tf_efficientnet_lite0 and tf_efficientnet_lite2; use "none" or a registered '
    "checkpoint."
)
TOWER_REFUSAL = "The registered weights tower are for resnet10t; choose that backbone with them."


@pytest.fixture
def staff(user_factory):
    return page_client(user_factory(is_staff=True, is_superuser=True))


@pytest.fixture
def tower() -> str:
    """Registered resnet10t weights (as manage.py weights_register leaves them): their backbone_weights value."""
    row = BackboneWeights.objects.create(
        name="tower", architecture="resnet10t", path="/srv/models/tower.safetensors", sha256="ab" * 32, size=1,
        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
    )  # fmt: skip
    return registered_weights_value(row.pk)


def stored(project) -> dict:
    return model_to_dict(Project.objects.get(pk=project.pk))


def page_errors(project, **data) -> dict[str, list[str]]:
    """What the settings page says about `data` for `project`, field by field."""
    form = ProjectSettingsForm(instance=project, data=data)
    form.is_valid()
    return form.errors


@pytest.mark.parametrize(
    ("changes", "field", "said"),
    [
        ({"backbone": "resnet10t", "backbone_weights": "bundled"}, "backbone_weights", BUNDLED_REFUSAL),
        ({"backbone": "tf_efficientnet_lite0", "backbone_weights": "tower"}, "backbone", TOWER_REFUSAL),
    ],
    ids=["bundled-for-another-backbone", "registered-for-another-architecture"],
)
def test_the_admin_refuses_weights_that_do_not_go_with_the_backbone_and_saves_nothing(
    project, staff, tower, changes, field, said
):
    # Given a staff user on the admin's change page of a project on Lite0 with bundled weights, and resnet10t weights
    # registered
    changes = {k: tower if v == "tower" else v for k, v in changes.items()}
    before = stored(project)

    # When they save a backbone and weights that do not go together, with a new name beside them
    response = admin_change_post(staff, project, name="Renamed", **changes)

    # Then the form comes back with the settings page's refusal on that field, and nothing is stored, the name included
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert dict(errors) == {field: [said]}
    assert page_errors(project, **changes)[field] == [said]
    assert said in unescape(response.content.decode())
    assert stored(project) == before


@pytest.mark.parametrize(
    ("backbone", "weights"),
    [("resnet10t", "tower"), ("resnet10t", "none"), ("tf_efficientnet_lite2", "bundled")],
)
def test_the_admin_saves_a_backbone_with_weights_that_go_with_it(project, staff, tower, backbone, weights):
    weights = tower if weights == "tower" else weights

    response = admin_change_post(staff, project, name="Renamed", backbone=backbone, backbone_weights=weights)

    assert response.status_code == 302, response.context["adminform"].form.errors
    after = stored(project)
    assert (after["name"], after["backbone"], after["backbone_weights"]) == ("Renamed", backbone, weights)

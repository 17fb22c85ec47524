"""One weights file, one registration: registering the same bytes (same sha256) again under another name is refused
with the name it already has, by weights_register and in the admin, and nothing is stored. A version records the
registration its project chose, read in one lookup."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import timm
import torch
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from safetensors.torch import save_file

from labeling.constants import registered_weights_value
from labeling.models import Item, Role
from tests.factories import page_client
from training import services
from training.ml.config import VerifiedWeights
from training.models import BackboneWeights, ModelVersion
from training.services.weights import backbone_weights_record

from .helpers import resolve
from .loop_fixtures import TINY_ROUND, digits_project

pytestmark = pytest.mark.django_db

ARCH = "resnet10t"  # a real timm backbone that builds in a fraction of a second


@pytest.fixture
def weights_file(tmp_path) -> Path:
    torch.manual_seed(1)
    path = tmp_path / "tower.safetensors"
    save_file(timm.create_model(ARCH, pretrained=False, num_classes=0).state_dict(), str(path))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _register(path: Path, *extra: str) -> None:
    call_command("weights_register", "--arch", ARCH, "--file", str(path), *extra, verbosity=0)


def _the_same_bytes(weights_file: Path, where: str) -> Path:
    if where == "the same path":
        return weights_file
    copy = weights_file.parent / "copies" / "tower-copy.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(weights_file, copy)
    return copy


@pytest.mark.parametrize("where", ["the same path", "a copy in another folder"])
def test_the_command_refuses_a_registered_file_under_another_name_and_names_the_registration(weights_file, where):
    # given the file registered as "tower"
    _register(weights_file)
    path = _the_same_bytes(weights_file, where)

    # when the same bytes are registered again under another name
    with pytest.raises(CommandError) as refused:
        _register(path, "--name", "tower v2", "--mean", "0.5", "0.5", "0.5", "--std", "0.5", "0.5", "0.5")

    # then the command says which name to use, and nothing changed
    assert str(refused.value) == (
        f"Nothing registered: the weights in {path.name} are already registered as 'tower' (the same sha256 "
        f"{_sha256(weights_file)}); use that name"
    )
    assert list(BackboneWeights.objects.values_list("name", "sha256")) == [("tower", _sha256(weights_file))]


def test_registering_the_same_name_and_file_again_is_refused_as_before(weights_file):
    _register(weights_file)

    with pytest.raises(CommandError, match="weights named 'tower' are already registered; choose another --name"):
        _register(weights_file)
    assert BackboneWeights.objects.count() == 1


@pytest.fixture
def staff_client(db) -> Client:
    """A staff user who may add and view backbone weights (not a superuser)."""
    user = get_user_model().objects.create_user("mlops", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="training", codename__in=["add_backboneweights", "view_backboneweights"]
        )
    )
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_form_refuses_a_registered_file_under_another_name(staff_client, weights_file):
    url = reverse("admin:training_backboneweights_add")
    saved = staff_client.post(url, {"architecture": ARCH, "path": str(weights_file), "name": "tower"})
    assert saved.status_code == 302, saved.content.decode()[:2000]

    refused = staff_client.post(url, {"architecture": ARCH, "path": str(weights_file), "name": "tower v2"})

    assert refused.status_code == 200
    assert (
        f"Nothing registered: the weights in tower.safetensors are already registered as &#x27;tower&#x27; "
        f"(the same sha256 {_sha256(weights_file)}); use that name"
    ) in refused.content.decode()
    assert list(BackboneWeights.objects.values_list("name", flat=True)) == ["tower"]


def _legacy_duplicates(weights_file: Path) -> tuple[BackboneWeights, BackboneWeights]:
    """One file under two names, as registrations made before duplicates were refused left it."""
    path, sha = str(weights_file.resolve()), _sha256(weights_file)
    fields = {"architecture": ARCH, "path": path, "sha256": sha, "size": weights_file.stat().st_size}
    first = BackboneWeights.objects.create(name="tower", mean=[0.5] * 3, std=[0.5] * 3, **fields)
    second = BackboneWeights.objects.create(name="a-copy", mean=[0.5] * 3, std=[0.5] * 3, **fields)
    return first, second


def test_the_record_comes_from_the_chosen_registration_in_one_lookup(weights_file, django_assert_num_queries):
    first, second = _legacy_duplicates(weights_file)
    spec = VerifiedWeights(first.path, first.sha256, (0.5,) * 3, (0.5,) * 3).spec()
    expected = {"architecture": ARCH, "file": "tower.safetensors", "sha256": first.sha256}

    with django_assert_num_queries(1):
        chosen = backbone_weights_record(spec, chosen=registered_weights_value(second.pk))
    with django_assert_num_queries(1):
        unchosen = backbone_weights_record(spec, chosen="bundled")

    assert chosen == {"name": "a-copy", **expected}
    assert unchosen == {"name": "tower", **expected}  # no registration chosen: the file's first
    assert backbone_weights_record("bundled", chosen="bundled") is None


def test_a_version_names_the_registration_its_project_chose(project_factory, member_of, weights_file, settings):
    # given a file registered twice (before duplicates were refused) and a project on the second name
    settings.LABELLOOP_ROUND_OVERRIDES = {**TINY_ROUND, "self_training": False}  # one head fit: weights under test
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    _, second = _legacy_duplicates(weights_file)
    project, truth, classes = digits_project(
        project_factory, n=40, backbone=ARCH, backbone_weights=registered_weights_value(second.pk), image_size=32
    )
    for item in Item.objects.filter(project=project).order_by("pk")[:24]:
        resolve(item, classes[truth[item.pk]])

    # when a worker runs a round
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    assert services.training_run_execute(run_id=run.pk)["status"] == "succeeded"

    # then the model page names the chosen registration with the file's sha256
    version = ModelVersion.objects.get(project=project, active=True)
    assert version.metrics["backbone_weights"]["name"] == "a-copy"
    html = page_client(member_of(project, Role.ML_ENGINEER)).get(reverse("training:model", args=[project.slug]))
    html = html.content.decode()
    assert f'backbone weights <strong>a-copy</strong> <span class="muted">sha256 <code>{second.sha256}</code>' in html

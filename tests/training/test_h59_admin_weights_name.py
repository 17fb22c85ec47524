"""The admin's "Add backbone weights" form says a taken name once, in the form's own terms ("choose another Name", on
the Name field), not the command's --name beside Django's unique message; the form says that saving checks the file
for a while; a name registered while the file was being checked is refused with a message, not a server error. The
command keeps its --name wording."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
import timm
import torch
from django.core.management import CommandError, call_command
from django.urls import reverse
from safetensors.torch import save_file

from training import admin as training_admin
from training.models import BackboneWeights
from training.services import weights as weights_service

pytestmark = pytest.mark.django_db

ARCH = "resnet10t"  # a real timm backbone that builds in a fraction of a second
ADD = "admin:training_backboneweights_add"


@pytest.fixture
def weights_file(tmp_path) -> Path:
    torch.manual_seed(1)
    path = tmp_path / "r18pt.safetensors"
    save_file(timm.create_model(ARCH, pretrained=False, num_classes=0).state_dict(), str(path))
    return path


def _errors(html: str) -> list[tuple[str, str]]:
    """(the error list's attributes, each message) of every error the admin page shows."""
    found = []
    for attrs, items in re.findall(r'<ul (class="errorlist[^>]*)>(.*?)</ul>', html, flags=re.S):
        for message in re.findall(r"<li>(.*?)</li>", items, flags=re.S):
            found.append((attrs, unescape(message)))
    return found


def _another_admin_registers(name: str) -> None:
    BackboneWeights.objects.create(
        name=name, architecture=ARCH, path="/elsewhere.pt", sha256="0" * 64, size=1, mean=[0.5] * 3, std=[0.5] * 3
    )


def test_saving_the_same_name_twice_shows_one_error_on_the_name_field(admin_client, weights_file):
    # given the form saved once (the impatient user's first click registered the weights)
    data = {"architecture": ARCH, "path": str(weights_file), "name": "r18pt-admin"}
    saved = admin_client.post(reverse(ADD), data)
    assert saved.status_code == 302, saved.content.decode()[:2000]

    # when the same form is sent again
    again = admin_client.post(reverse(ADD), data)

    # then one error, on the Name field, in the form's terms; nothing else is stored
    html = again.content.decode()
    assert again.status_code == 200
    assert _errors(html) == [
        (
            'class="errorlist" id="id_name_error"',
            "Weights named 'r18pt-admin' are already registered; choose another Name.",
        )
    ]
    assert "Please correct the error below." in html
    assert "--name" not in html
    assert "already exists" not in html
    assert list(BackboneWeights.objects.values_list("name", flat=True)) == ["r18pt-admin"]


def test_an_empty_name_whose_file_name_is_taken_says_so_on_the_name_field(admin_client, weights_file):
    # given weights registered as "r18pt"
    _another_admin_registers("r18pt")

    # when a file named r18pt.safetensors is added with Name left empty
    refused = admin_client.post(reverse(ADD), {"architecture": ARCH, "path": str(weights_file), "name": ""})

    # then the Name field says the file's name is taken
    assert _errors(refused.content.decode()) == [
        (
            'class="errorlist" id="id_name_error"',
            "Weights named 'r18pt' (the file's name, used when Name is empty) are already registered; choose "
            "another Name.",
        )
    ]


def test_the_add_form_says_that_saving_checks_the_file_and_sends_once(admin_client):
    html = unescape(admin_client.get(reverse(ADD)).content.decode())

    assert (
        "Saving hashes the file and test-loads it into the architecture before anything is stored: this takes tens "
        "of seconds for a large file. Click Save once and keep the page open."
    ) in html
    assert re.search(r'<script src="/static/js/admin-weights\.js"></script>', html)


def test_a_name_registered_while_the_file_was_checked_is_refused_on_the_name_field(
    admin_client, weights_file, monkeypatch
):
    # given another admin registers the name during the tens of seconds this form's file is checked
    check = weights_service.backbone_weights_check_isolated

    def check_while_another_registers(**kwargs):
        report = check(**kwargs)
        _another_admin_registers("r18pt-admin")
        return report

    monkeypatch.setattr(weights_service, "backbone_weights_check_isolated", check_while_another_registers)

    # when the form is saved
    answer = admin_client.post(reverse(ADD), {"architecture": ARCH, "path": str(weights_file), "name": "r18pt-admin"})

    # then the form says the name is taken, once, and only the other registration exists
    assert answer.status_code == 200
    assert _errors(answer.content.decode()) == [
        (
            'class="errorlist" id="id_name_error"',
            "Weights named 'r18pt-admin' are already registered; choose another Name.",
        )
    ]
    assert list(BackboneWeights.objects.values_list("path", flat=True)) == ["/elsewhere.pt"]


def test_a_name_registered_in_the_instant_before_the_save_is_refused_with_a_message(
    admin_client, weights_file, monkeypatch
):
    # given another admin's registration of the name commits between this form's check and its save
    save = training_admin.backbone_weights_save

    def save_just_after_another(**kwargs):
        _another_admin_registers("r18pt-admin")
        return save(**kwargs)

    monkeypatch.setattr(training_admin, "backbone_weights_save", save_just_after_another)

    # when the form is saved
    answer = admin_client.post(
        reverse(ADD), {"architecture": ARCH, "path": str(weights_file), "name": "r18pt-admin"}, follow=True
    )

    # then the add page says why nothing was registered (no server error); this request stored nothing
    assert answer.redirect_chain == [(reverse(ADD), 302)]
    assert [str(m) for m in answer.context["messages"]] == [
        "Nothing registered: weights named 'r18pt-admin' are already registered; choose another Name."
    ]
    assert not BackboneWeights.objects.exists()  # the admin's transaction, the other registration's row included


def test_the_command_keeps_its_own_wording_for_a_taken_name(weights_file):
    call_command("weights_register", "--arch", ARCH, "--file", str(weights_file), "--name", "r18", verbosity=0)

    with pytest.raises(CommandError) as refused:
        call_command("weights_register", "--arch", ARCH, "--file", str(weights_file), "--name", "r18", verbosity=0)

    assert str(refused.value) == "Nothing registered: weights named 'r18' are already registered; choose another --name"

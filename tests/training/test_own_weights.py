"""Bring your own weights: an ML engineer registers a weights file for a timm architecture (command or admin), its
sha256 is recorded and a copy kept under the data root, a project trains and scores with it (whatever becomes of the
file registered), and a worker refuses the copy once its bytes change."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import timm
import torch
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from safetensors.torch import save_file

from labeling.constants import registered_weights_value
from labeling.forms import ProjectSettingsForm
from labeling.models import Item, Role
from labeling.services.imports import item_create_from_bytes
from training import services
from training.models import BackboneWeights, ModelVersion, Prediction, RunStatus, TrainingRun
from training.services.artifacts import version_checkpoint_dir

from .helpers import resolve
from .loop_fixtures import TINY_ROUND, digit_png, digits_project

pytestmark = pytest.mark.django_db

ARCH = "resnet10t"  # 5 M parameters, 84 tensors: a real timm backbone that builds in a fraction of a second


def _random_backbone(seed: int, num_classes: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return timm.create_model(ARCH, pretrained=False, num_classes=num_classes).state_dict()


@pytest.fixture
def weights_file(tmp_path) -> Path:
    """Random resnet10t backbone weights as safetensors (num_classes=0, what a team exports of its own tower)."""
    path = tmp_path / "tower.safetensors"
    save_file(_random_backbone(1), str(path))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _register(path: Path, *extra: str) -> str:
    return call_command("weights_register", "--arch", ARCH, "--file", str(path), *extra, verbosity=0) or ""


@pytest.mark.parametrize("fmt", ["safetensors", "state_dict"])
def test_the_command_registers_a_file_with_its_sha256_in_either_format(tmp_path, fmt, capsys, settings):
    # given weights saved as safetensors, or as a PyTorch checkpoint {"state_dict": ...} that still has its 1000-class
    # ImageNet head (a matching head is ignored: the project trains its own)
    if fmt == "safetensors":
        path = tmp_path / "tower.safetensors"
        save_file(_random_backbone(2), str(path))
    else:
        path = tmp_path / "tower.pth"
        torch.save({"state_dict": _random_backbone(2, num_classes=1000), "epoch": 3}, path)

    # when an ML engineer registers it
    call_command("weights_register", "--arch", ARCH, "--file", str(path), "--name", "our tower")

    # then it is recorded with the file's sha256 and size, timm's normalisation, and the command says so
    row = BackboneWeights.objects.get()
    kept = Path(settings.LABELLOOP_DATA_ROOT) / "weights" / _sha256(path) / path.name  # the platform's own copy
    assert (row.name, row.architecture, row.path) == ("our tower", ARCH, str(kept))
    assert kept.read_bytes() == path.read_bytes()
    assert (row.sha256, row.size) == (_sha256(path), path.stat().st_size)
    assert row.mean == pytest.approx([0.485, 0.456, 0.406])
    assert row.std == pytest.approx([0.229, 0.224, 0.225])
    out = capsys.readouterr()
    assert row.sha256 in out.out
    assert "sha256" in out.err  # the hashing progress bar
    assert "100%" in out.err


def test_given_normalisation_is_kept(weights_file):
    _register(weights_file, "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25")

    row = BackboneWeights.objects.get()
    assert (row.name, row.mean, row.std) == ("tower", [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])


def _saved(path: Path, state: dict[str, torch.Tensor]) -> Path:
    save_file(state, str(path))
    return path


def _torch_saved(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def _misfit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = dict(state)
    state["conv1.0.weight"] = torch.zeros(8, 3, 3, 3)
    state.pop("layer4.0.conv1.weight")
    state["extra.bias"] = torch.zeros(3)
    return state


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _lite0(folder: Path) -> Path:
    return _saved(folder / "lite0.safetensors", timm.create_model("tf_efficientnet_lite0", num_classes=0).state_dict())


def _truncated(folder: Path) -> Path:
    whole = _saved(folder / "whole.safetensors", _random_backbone(4)).read_bytes()
    return _written(folder / "cut.safetensors", whole[:5000])


# case -> (make the file in a folder, extra command arguments, what the refusal says)
BAD_FILES = {
    "another architecture": (
        _lite0,
        [],
        "lite0.safetensors does not fit resnet10t: 66 missing keys: conv1.0.weight, conv1.1.weight, conv1.1.bias, ...",
    ),
    "wrong shapes and keys": (
        lambda d: _saved(d / "misfit.safetensors", _misfit(_random_backbone(3))),
        [],
        "misfit.safetensors does not fit resnet10t: 1 missing keys: layer4.0.conv1.weight; 1 unexpected keys: "
        "extra.bias; 1 shape mismatches: conv1.0.weight (file (8, 3, 3, 3), model (24, 3, 3, 3))",
    ),
    "corrupt bytes": (
        lambda d: _written(d / "corrupt.pth", b"\x80\x02garbage" * 100),
        [],
        "corrupt.pth is neither a safetensors file nor a PyTorch state dict: the file is corrupt or in another format",
    ),
    "truncated safetensors": (_truncated, [], "cut.safetensors is not a readable safetensors file"),
    "a pickled list": (
        lambda d: _torch_saved(d / "list.pth", [torch.zeros(2)]),
        [],
        "list.pth holds list, not a state dict",
    ),
    "a pickled module": (
        lambda d: _torch_saved(d / "module.pth", torch.nn.Linear(2, 2)),
        [],
        "module.pth is neither a safetensors file nor a PyTorch state dict: it pickles a "
        "torch.nn.modules.linear.Linear object (only tensors and plain containers load without running code)",
    ),
    "no such file": (lambda d: d / "gone.pth", [], "no such file"),
    "unknown architecture": (
        lambda d: _saved(d / "ok.safetensors", _random_backbone(5)),
        ["--arch", "resnet_9000"],
        "unknown timm architecture 'resnet_9000'",
    ),
    "half a normalisation": (
        lambda d: _saved(d / "ok.safetensors", _random_backbone(5)),
        ["--mean", "0.5", "0.5", "0.5"],
        "give both --mean and --std",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_that_cannot_be_a_backbone_is_refused_with_a_reason_and_nothing_is_registered(tmp_path, case):
    make, extra, message = BAD_FILES[case]

    with pytest.raises(CommandError) as refused:
        _register(make(tmp_path), *extra)

    assert str(refused.value).startswith("Nothing registered: ")
    assert message in str(refused.value)
    assert not BackboneWeights.objects.exists()


def test_a_taken_name_is_refused(weights_file):
    _register(weights_file)

    with pytest.raises(CommandError, match="weights named 'tower' are already registered"):
        _register(weights_file)
    assert BackboneWeights.objects.count() == 1


def test_a_manager_chooses_registered_weights_with_their_architecture(project, member_of, weights_file):
    _register(weights_file)
    row = BackboneWeights.objects.get()
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    url = reverse("labeling:project_settings", args=[project.slug])
    data = {k: v for k, v in ProjectSettingsForm(instance=project).initial.items() if v is not None}
    data.pop("preselect_suggestion", None)

    # the settings page offers the weights by name with their sha256, and their architecture as a backbone
    html = client.get(url).content.decode()
    assert f'value="{registered_weights_value(row.pk)}"' in html
    assert f"Registered: tower (resnet10t, sha256 {row.sha256[:12]}" in html
    assert '<option value="resnet10t"' in html
    assert f"<td>tower</td><td><code>resnet10t</code></td><td><code>{row.sha256}</code></td>" in html

    # a backbone that does not match the weights is refused and nothing changes
    refused = client.post(url, {**data, "action": "settings", "backbone_weights": registered_weights_value(row.pk)})
    assert "The registered weights tower are for resnet10t; choose that backbone with them." in refused.content.decode()
    project.refresh_from_db()
    assert (project.backbone, project.backbone_weights) == ("tf_efficientnet_lite0", "bundled")

    # with the matching backbone they are saved
    data.update(backbone=ARCH, backbone_weights=registered_weights_value(row.pk), action="settings")
    assert client.post(url, data).status_code == 302
    project.refresh_from_db()
    assert (project.backbone, project.backbone_weights) == (ARCH, registered_weights_value(row.pk))


def _labeled_project(project_factory, weights_id: int):
    """40 digits with 24 labels, on registered resnet10t weights at 32 px: a head round takes about a second."""
    project, truth, classes = digits_project(
        project_factory, n=40, backbone=ARCH, backbone_weights=registered_weights_value(weights_id), image_size=32
    )
    for item in Item.objects.filter(project=project).order_by("pk")[:24]:
        resolve(item, classes[truth[item.pk]])
    return project


def test_a_round_trains_with_registered_weights_and_the_version_records_their_sha256(
    project_factory, weights_file, settings
):
    # given registered weights chosen by a project
    settings.LABELLOOP_ROUND_OVERRIDES = {**TINY_ROUND, "self_training": False}  # one head fit: weights under test
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    _register(weights_file, "--mean", "0.5", "0.5", "0.5", "--std", "0.5", "0.5", "0.5")
    row = BackboneWeights.objects.get()
    project = _labeled_project(project_factory, row.pk)
    # (the same file under another name, which sorts first, as registrations made before duplicates were refused
    # left it, is not the one the project chose)
    BackboneWeights.objects.create(
        name="a-copy", **{f: getattr(row, f) for f in ("architecture", "path", "sha256", "size", "mean", "std")}
    )

    # when a worker runs a round
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    summary = services.training_run_execute(run_id=run.pk)

    # then the version is that architecture on those weights, and its record names their sha256
    assert summary["status"] == "succeeded", summary
    version = ModelVersion.objects.get(project=project, active=True)
    assert version.architecture == ARCH
    assert version.metrics["backbone_weights"] == {
        "name": "tower", "architecture": ARCH, "file": "tower.safetensors", "sha256": _sha256(weights_file)
    }  # fmt: skip
    config = json.loads((version_checkpoint_dir(version=version) / "config.json").read_text())
    assert config["preprocessing"]["mean"] == [0.5, 0.5, 0.5]  # the normalisation registered with the weights

    # and scoring a newly imported image loads the same weights (its embedding is new)
    new = item_create_from_bytes(project=project, name="new.png", data=digit_png(torch.arange(64).numpy() % 17))
    services.model_score_pool(project=project, version=version)
    assert Prediction.objects.filter(model_version=version, item=new).exists()


def test_a_weights_file_changed_after_registration_fails_the_run_and_scoring_with_the_reason(
    project_factory, weights_file, settings
):
    settings.LABELLOOP_ROUND_OVERRIDES = {**TINY_ROUND, "self_training": False}  # one head fit: weights under test
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    _register(weights_file)
    row = BackboneWeights.objects.get()
    project = _labeled_project(project_factory, row.pk)
    # the platform's copy is overwritten with other weights of the same shapes (a retrained tower copied over it)
    save_file(_random_backbone(9), row.path)

    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    services.training_run_execute(run_id=run.pk)

    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.FAILED
    assert f"the backbone weights file {row.path} changed since it was registered" in run.error
    assert "register the file again or choose other weights" in run.error
    assert "Traceback" not in run.error  # the reason says it all; the worker's log keeps the traceback
    assert not ModelVersion.objects.filter(project=project).exists()


def test_weights_moved_away_after_registering_still_train_and_a_lost_copy_says_what_to_do(
    project_factory, weights_file, settings
):
    settings.LABELLOOP_ROUND_OVERRIDES = {**TINY_ROUND, "self_training": False}
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    _register(weights_file)
    row = BackboneWeights.objects.get()
    project = _labeled_project(project_factory, row.pk)
    # Given the ML engineer tidied their folder after registering (stop 55's tester: every run failed then)
    weights_file.rename(weights_file.with_name("tidied.safetensors"))

    # When a round runs, it trains on the platform's copy
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    assert services.training_run_execute(run_id=run.pk)["status"] == "succeeded"

    # And were the copy itself lost (a data folder restored without it), the run fails with what to do, no traceback
    Path(row.path).unlink()
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False, force=True)
    services.training_run_execute(run_id=run.pk)
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.FAILED
    assert run.error.startswith(f"the registered backbone weights file {row.path} is gone")
    assert "register the weights again (manage.py weights_register, or the admin) or choose other weights" in run.error
    assert "Traceback" not in run.error


def test_staff_register_weights_in_the_admin(admin_client, weights_file, tmp_path):
    url = reverse("admin:training_backboneweights_add")

    # a path that is not there: the form says so and nothing is stored
    refused = admin_client.post(url, {"architecture": ARCH, "path": str(tmp_path / "gone.pth"), "name": "x"})
    assert refused.status_code == 200
    assert f"Nothing registered: no such file: {tmp_path / 'gone.pth'}" in refused.content.decode()
    assert not BackboneWeights.objects.exists()

    # a good file is validated (in a child process: no torch in the web process) and recorded with its sha256
    saved = admin_client.post(url, {"architecture": ARCH, "path": str(weights_file), "name": "tower v2"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    row = BackboneWeights.objects.get()
    assert (row.name, row.sha256, row.created_by.username) == ("tower v2", _sha256(weights_file), "admin")
    assert row.sha256 in admin_client.get(reverse("admin:training_backboneweights_changelist")).content.decode()
    # once registered, the file and its sha256 are read-only: other bytes are registered anew
    change = admin_client.get(reverse("admin:training_backboneweights_change", args=[row.pk])).content.decode()
    assert row.sha256 in change
    assert 'name="sha256"' not in change
    assert 'name="path"' not in change


def test_the_admin_shows_why_the_child_process_refused_a_file(admin_client, tmp_path):
    notes = _written(tmp_path / "notes.pth", b"not weights")

    refused = admin_client.post(
        reverse("admin:training_backboneweights_add"), {"architecture": ARCH, "path": str(notes), "name": ""}
    )

    assert "Nothing registered: notes.pth is neither a safetensors file nor a PyTorch state dict" in (
        refused.content.decode()
    )
    assert not BackboneWeights.objects.exists()

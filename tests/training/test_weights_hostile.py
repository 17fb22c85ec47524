"""A weights file that is no weights file (random bytes, a truncated checkpoint, a hostile pickle, an empty file) is
refused with the file's name and why, through the admin (a form error, never a 500) and weights_register (exit 1 with
the message, no traceback), and nothing is registered."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.conftest import database_url_for_workers
from training.ml.models import WeightsError, state_dict_from_bytes
from training.models import BackboneWeights

pytestmark = pytest.mark.django_db

ARCH = "resnet10t"
NEITHER = "is neither a safetensors file nor a PyTorch state dict: "


class RunsCode:
    """A pickle that runs a shell command when loaded without weights_only."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/labelloop-pwned",))


def _torch_saved(obj, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


CHECKPOINT = _torch_saved({"conv.weight": torch.zeros(4, 3), "conv.bias": torch.zeros(4)})
LEGACY = _torch_saved({"conv.weight": torch.zeros(4, 3)}, _use_new_zipfile_serialization=False)

# case -> (file name, its bytes, what the refusal says after "Nothing registered: ")
HOSTILE = {
    "random bytes named .safetensors": (
        "random.safetensors",
        random.Random(1).randbytes(4096),
        "random.safetensors is not a readable safetensors file: Error while deserializing",
    ),
    "random bytes named .pt": (
        "random.pt",
        random.Random(2).randbytes(4096),
        f"random.pt {NEITHER}the file is corrupt or in another format",
    ),
    "a truncated .pt": ("cut.pt", CHECKPOINT[: len(CHECKPOINT) // 2], f"cut.pt {NEITHER}the file is corrupt"),
    # torch's legacy reader meets these with a bare struct.error and IndexError, and a text file with KeyError: 101
    "a legacy .pt cut after 18 bytes": (
        "old.pt",
        LEGACY[:18],
        f"old.pt {NEITHER}the file is corrupt or in another format (error: unpack requires a buffer of 2 bytes)",
    ),
    "one byte of a .pt": (
        "byte.pt",
        LEGACY[:1],
        f"byte.pt {NEITHER}the file is corrupt or in another format (IndexError",
    ),
    "text named .pth": (
        "notes.pth",
        b"hello, these are my notes\n" * 20,
        f"notes.pth {NEITHER}the file is corrupt or in another format (KeyError: 101)",
    ),
    "a pickle that runs code": (
        "evil.pt",
        pickle.dumps(RunsCode(), protocol=2),
        f"evil.pt {NEITHER}it pickles a posix.system object (only tensors and plain containers load without running "
        "code)",
    ),
    "a pickle of settings, not tensors": (
        "settings.pt",
        _torch_saved({"lr": 0.1, "epoch": 3}),
        "settings.pt is not a state dict: 2 entries are not tensors, e.g. ['lr', 'epoch']",
    ),
    "an empty .safetensors": ("empty.safetensors", b"", "empty.safetensors is empty (0 bytes)"),
    "an empty .pt": ("empty.pt", b"", "empty.pt is empty (0 bytes), not a safetensors file or a PyTorch state dict"),
}


@pytest.fixture(params=list(HOSTILE))
def hostile(request, tmp_path) -> tuple[Path, str]:
    name, data, message = HOSTILE[request.param]
    path = tmp_path / name
    path.write_bytes(data)
    return path, message


def test_the_loader_raises_one_error_type_naming_the_file(hostile):
    path, message = hostile

    with pytest.raises(WeightsError) as refused:
        state_dict_from_bytes(path.read_bytes(), path.name)

    assert message in str(refused.value)
    assert "weights_only" not in str(refused.value)  # torch's advice to load it unsafely is not passed on
    assert not Path("/tmp/labelloop-pwned").exists()


def test_mangled_checkpoints_raise_only_the_loaders_error():
    # Given checkpoints in each format with bytes flipped, cut short or appended
    rng = random.Random(7)
    safetensors = pytest.importorskip("safetensors.torch").save({"conv.weight": torch.zeros(4, 3)})
    for _ in range(300):
        data = bytearray(rng.choice([CHECKPOINT, LEGACY, safetensors]))
        how = rng.randrange(3)
        if how == 0:
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif how == 1:
            data = data[: rng.randrange(len(data))]
        else:
            data += rng.randbytes(rng.randrange(1, 50))
        name = rng.choice(["w.pt", "w.safetensors", "w.bin"])

        # When each is read, then it is a state dict or a WeightsError, never another exception
        with contextlib.suppress(WeightsError):
            state_dict_from_bytes(bytes(data), name)


def test_the_admin_refuses_a_hostile_file_with_a_form_error_and_registers_nothing(admin_client, hostile):
    path, message = hostile

    answer = admin_client.post(
        reverse("admin:training_backboneweights_add"), {"architecture": ARCH, "path": str(path), "name": "mine"}
    )

    assert answer.status_code == 200
    errors = answer.context["adminform"].form.non_field_errors()
    assert len(errors) == 1
    assert errors[0].startswith(f"Nothing registered: {message}"), errors[0]
    assert not BackboneWeights.objects.exists()


def test_the_command_refuses_a_hostile_file_with_its_reason_and_registers_nothing(hostile):
    path, message = hostile

    with pytest.raises(CommandError) as refused:
        call_command("weights_register", "--arch", ARCH, "--file", str(path), verbosity=0)

    assert str(refused.value).startswith(f"Nothing registered: {message}"), str(refused.value)
    assert not BackboneWeights.objects.exists()


def test_manage_py_exits_1_with_the_message_and_no_traceback(tmp_path):
    notes = tmp_path / "notes.pth"
    notes.write_bytes(b"these are not weights\n")

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url_for_workers()}

    done = subprocess.run(
        [sys.executable, "manage.py", "weights_register", "--arch", ARCH, "--file", str(notes), "--verbosity", "0"],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    assert f"Nothing registered: notes.pth {NEITHER}the file is corrupt or in another format (" in done.stderr
    assert "Traceback" not in done.stderr

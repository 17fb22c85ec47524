"""manage.py weights_register --arch NAME --file PATH [--name LABEL] [--mean M M M --std S S S] [--user NAME]:
register a local weights file (safetensors or a PyTorch state dict) as a backbone projects may choose.

An unknown --arch, a missing file, a folder or an unreadable file is refused before the file is hashed. The file is
then hashed (a progress bar for large files) and loaded into timm's architecture before anything is stored; a file
that does not fit is refused with the keys that do not match, and one that is no weights file at all (text, a zip,
a truncated pickle) with its name and what was expected. Every refusal is a CommandError: nothing is registered.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from training.services.weights import WeightsRegistrationError, backbone_weights_prepare, backbone_weights_save

EXPECTED = "a .safetensors file or a PyTorch state dict (.pth/.pt/.bin) of tensor names -> tensors"


class Command(BaseCommand):
    help = "Register a weights file for a timm architecture, with its sha256, as a backbone projects may choose."

    def add_arguments(self, parser):
        parser.add_argument("--arch", required=True, help="timm architecture name, e.g. vit_small_patch14_dinov2")
        parser.add_argument("--file", required=True, help="the .safetensors or .pth state dict, readable by workers")
        parser.add_argument("--name", help="label shown in the project settings (default: the file name)")
        parser.add_argument("--mean", type=float, nargs="+", help="input normalisation mean per channel")
        parser.add_argument("--std", type=float, nargs="+", help="input normalisation std per channel")
        parser.add_argument("--user", help="username recorded as the one who registered the weights")

    def handle(self, *args, **opts):
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"no user named {opts['user']!r}")
        path = Path(opts["file"]).expanduser()
        self._check_before_hashing(opts["arch"].strip(), path)
        bar = tqdm(
            total=0, desc="sha256", unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
            disable=opts["verbosity"] == 0,
        )  # fmt: skip

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)  # redrawn at most every 0.1 s (tqdm's mininterval), not per image

        try:
            weights = backbone_weights_prepare(
                architecture=opts["arch"], path=path, name=opts["name"], mean=opts["mean"], std=opts["std"],
                progress=progress,
            )  # fmt: skip
        except WeightsRegistrationError as exc:
            raise CommandError(f"Nothing registered: {exc}") from exc
        except DatabaseError:
            raise
        except Exception as exc:
            # Reading the file raises WeightsError (above, as WeightsRegistrationError) for every loader failure; what
            # is left (timm building the model, copying the file's tensors into it) can only be the file's fault too.
            raise CommandError(
                f"Nothing registered: {path} could not be read as weights of {opts['arch']}: expected {EXPECTED} "
                f"({type(exc).__name__}: {exc})."
            ) from exc
        finally:
            bar.close()
        try:
            weights = backbone_weights_save(weights=weights, created_by=user)
        except WeightsRegistrationError as exc:
            raise CommandError(f"Nothing registered: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {weights.name}: {weights.architecture}, {weights.size} bytes, sha256 {weights.sha256}. "
                "Projects may now choose it as their backbone weights in the settings."
            )
        )

    @staticmethod
    def _check_before_hashing(architecture: str, path: Path) -> None:
        """What can be refused without reading the file (a large file takes a while to hash)."""
        import timm  # the command's process trains and scores anyway; the web process never runs this

        if not timm.is_model(architecture):
            close = difflib.get_close_matches(architecture, timm.list_models(), n=5, cutoff=0.8)
            hint = f"; did you mean {' or '.join(close)}?" if close else " (timm.list_models() lists them)"
            raise CommandError(f"Nothing registered: unknown timm architecture {architecture!r}{hint}")
        if not path.exists():
            raise CommandError(f"Nothing registered: no such file: {path}")
        if path.is_dir():
            raise CommandError(f"Nothing registered: {path} is a folder; expected {EXPECTED}.")
        if not path.is_file():
            raise CommandError(f"Nothing registered: {path} is not a regular file; expected {EXPECTED}.")
        if not os.access(path, os.R_OK):
            raise CommandError(f"Nothing registered: {path} cannot be read (permission denied).")

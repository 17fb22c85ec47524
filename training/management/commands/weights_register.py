"""manage.py weights_register --arch NAME --file PATH [--name LABEL] [--mean M M M --std S S S] [--user NAME]:
register a local weights file (safetensors or a PyTorch state dict) as a backbone projects may choose.

The file is hashed (a progress bar for large files) and loaded into timm's architecture before anything is stored;
a file that does not fit is refused with the keys that do not match.
"""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.services.weights import WeightsRegistrationError, backbone_weights_register


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
        bar = tqdm(
            total=0, desc="sha256", unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
            disable=opts["verbosity"] == 0,
        )  # fmt: skip

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)  # redrawn at most every 0.1 s (tqdm's mininterval), not per image

        try:
            weights = backbone_weights_register(
                architecture=opts["arch"], path=opts["file"], name=opts["name"], mean=opts["mean"], std=opts["std"],
                created_by=user, progress=progress,
            )  # fmt: skip
        except WeightsRegistrationError as exc:
            raise CommandError(f"Nothing registered: {exc}") from exc
        finally:
            bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {weights.name}: {weights.architecture}, {weights.size} bytes, sha256 {weights.sha256}. "
                "Projects may now choose it as their backbone weights in the settings."
            )
        )

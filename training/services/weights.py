"""Registered backbone weights: a file is validated (it loads into its timm architecture) and its sha256 recorded
before any project can choose it; a round then names the file with that sha256, so a worker trains and scores only
with the bytes that were validated (training.ml.models refuses a changed file). Registering keeps a copy under
LABELLOOP_DATA_ROOT/weights/<sha256>/ (the workers' shared data folder), and the registration names the copy: the
file registered may be moved, deleted or overwritten afterwards, and a worker that cannot see the registering
machine's folders (another container) still finds the weights.

torch is imported inside the functions, or in a child process for the admin: web processes never import it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from labeling.constants import registered_weights_id
from training.models import BackboneWeights

CHECK_TIMEOUT_SECONDS = 900

# Run in a child process by the admin: validating loads torch and timm, which a web process never imports.
_CHECK_CODE = """
import json, sys
from training.ml.models import WeightsError, weights_check
try:
    print(json.dumps({"ok": weights_check(sys.argv[1], sys.argv[2])}))
except WeightsError as exc:
    print(json.dumps({"error": str(exc)}))
"""


class WeightsRegistrationError(ValueError):
    """Weights that cannot be registered; the message says why and nothing was stored."""


class WeightsNameTakenError(WeightsRegistrationError):
    """The name is registered already. The message names the command's --name; the admin says it in its own terms
    from `name`."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"weights named {name!r} are already registered; choose another --name")


def _refuse_taken_name(name: str) -> None:
    if BackboneWeights.objects.filter(name=name).exists():
        raise WeightsNameTakenError(name)


def _normalisation(values: Sequence[float] | None, what: str) -> list[float] | None:
    if values is None:
        return None
    out = [float(v) for v in values]
    if not out or not all(math.isfinite(v) for v in out):
        raise WeightsRegistrationError(f"--{what} needs finite numbers, one per channel (e.g. 0.485 0.456 0.406)")
    if what == "std" and any(v <= 0 for v in out):
        raise WeightsRegistrationError("--std values must be positive")
    return out


def backbone_weights_check(
    *, architecture: str, path: Path, progress: Callable[[int, int], None] | None = None
) -> dict:
    """Validate in this process (commands, workers): sha256, size, tensors, features, timm's mean/std."""
    from training.ml.models import WeightsError, weights_check

    try:
        return weights_check(architecture, path, progress)
    except WeightsError as exc:
        raise WeightsRegistrationError(str(exc)) from exc


def backbone_weights_check_isolated(*, architecture: str, path: Path) -> dict:
    """The same validation in a child Python process (the admin: no torch in the web process)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHECK_CODE, architecture, str(path)],
            cwd=str(settings.BASE_DIR),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WeightsRegistrationError(f"checking {path} took over {CHECK_TIMEOUT_SECONDS} s; use the command") from exc
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if "ok" in answer:
        return answer["ok"]
    if "error" in answer:
        raise WeightsRegistrationError(answer["error"])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise WeightsRegistrationError(f"checking {path} failed: {tail}")


def backbone_weights_prepare(
    *,
    architecture: str,
    path: str | Path,
    name: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    isolated: bool = False,
) -> BackboneWeights:
    """Validate `path` as backbone weights of timm's `architecture`: an unsaved BackboneWeights with its sha256.

    `name` defaults to the file's stem; mean/std (one value per channel, both or neither) default to timm's for the
    architecture. Raises WeightsRegistrationError for a taken name (WeightsNameTakenError, before the file is read
    and again after the check), a missing or corrupt file, a pickle that is not a state dict, or tensors that do not
    fit the architecture (a few keys named). `isolated` validates in a child process (the admin).
    """
    path = Path(path).expanduser().resolve()
    architecture = architecture.strip()
    name = (name or path.stem).strip()[:100]
    mean_values, std_values = _normalisation(mean, "mean"), _normalisation(std, "std")
    if (mean_values is None) != (std_values is None):
        raise WeightsRegistrationError("give both --mean and --std, or neither (then timm's values are used)")
    if mean_values is not None and len(mean_values) != len(std_values):
        raise WeightsRegistrationError("--mean and --std need the same number of values (one per channel)")
    if not name:
        raise WeightsRegistrationError("the weights need a name")
    _refuse_taken_name(name)  # before the file is read: a taken name is said at once, not after the check
    if not path.is_file():
        raise WeightsRegistrationError(f"no such file: {path}")
    if isolated:
        report = backbone_weights_check_isolated(architecture=architecture, path=path)
    else:
        report = backbone_weights_check(architecture=architecture, path=path, progress=progress)
    _refuse_registered_file(sha256=report["sha256"], path=path)
    _refuse_taken_name(name)  # and after it (tens of seconds for a large file): someone may have taken it meanwhile
    kept = backbone_weights_keep(path=path, sha256=report["sha256"])  # not copied for a name refused by then
    return BackboneWeights(
        name=name,
        architecture=architecture,
        path=str(kept),
        sha256=report["sha256"],
        size=int(report["size"]),
        mean=mean_values if mean_values is not None else report["mean"],
        std=std_values if std_values is not None else report["std"],
    )


WEIGHTS_FOLDER = "weights"  # under LABELLOOP_DATA_ROOT: the registered files' copies, a folder per sha256
COPY_CHUNK = 8 << 20


def backbone_weights_keep(*, path: Path, sha256: str) -> Path:
    """The platform's copy of a validated weights file, LABELLOOP_DATA_ROOT/weights/<sha256>/<its name>, made now
    unless it is there; its bytes are hashed while copied, so a file that changed after the check is refused."""
    folder = Path(settings.LABELLOOP_DATA_ROOT) / WEIGHTS_FOLDER / sha256
    kept = folder / path.name
    if kept.is_file() and kept.stat().st_size == path.stat().st_size:
        return kept  # a worker verifies the sha256 each time it loads the file
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".copy-")
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as source:
            while chunk := source.read(COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise WeightsRegistrationError(f"{path} changed while it was being registered; register it again")
        os.replace(tmp, kept)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return kept


def _refuse_registered_file(*, sha256: str, path: Path) -> None:
    """One registration per file: two names for the same bytes would let a model card name either."""
    row = BackboneWeights.objects.filter(sha256=sha256).order_by("pk").first()
    if row is not None:
        raise WeightsRegistrationError(
            f"the weights in {path.name} are already registered as {row.name!r} (the same sha256 {sha256}); use "
            "that name"
        )


def backbone_weights_register(
    *,
    architecture: str,
    path: str | Path,
    name: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    created_by: AbstractBaseUser | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BackboneWeights:
    """Validate (backbone_weights_prepare, in this process) and record the weights; nothing is stored on an error."""
    weights = backbone_weights_prepare(
        architecture=architecture, path=path, name=name, mean=mean, std=std, progress=progress
    )
    return backbone_weights_save(weights=weights, created_by=created_by)


def backbone_weights_save(*, weights: BackboneWeights, created_by: AbstractBaseUser | None = None) -> BackboneWeights:
    """Store prepared weights (backbone_weights_prepare); a file registered meanwhile raises
    WeightsRegistrationError, a name WeightsNameTakenError."""
    weights.created_by = created_by if created_by is not None else weights.created_by
    try:
        with transaction.atomic():
            _refuse_registered_file(sha256=weights.sha256, path=Path(weights.path))
            weights.save()
    except IntegrityError as exc:
        raise WeightsNameTakenError(weights.name) from exc
    return weights


def backbone_weights_spec(value: str) -> str:
    """What RoundConfig.weights gets for a project's backbone_weights: registered weights become the file with the
    sha256 (and mean/std) the worker must find; every other value passes through."""
    weights_id = registered_weights_id(value)
    if weights_id is None:
        return value
    from training.ml.config import VerifiedWeights

    row = BackboneWeights.objects.filter(pk=weights_id).first()
    if row is None:
        raise ValueError(
            f"the project's registered backbone weights (#{weights_id}) no longer exist; choose other weights in the "
            "project settings"
        )
    return VerifiedWeights(row.path, row.sha256, tuple(row.mean), tuple(row.std)).spec()


def backbone_weights_record(weights: str, *, chosen: str = "") -> dict[str, Any] | None:
    """What a model version stores about registered weights a round loaded (RoundConfig.weights), or None:
    name, architecture, file and the sha256 the worker verified. `chosen`: the project's backbone_weights setting;
    the registration it names is recorded (a file registered before duplicates were refused may have several
    names), else the first registration of the file. A registration deleted during the round leaves the name empty.
    """
    from training.ml.config import VerifiedWeights

    spec = VerifiedWeights.parse(weights)
    if spec is None:
        return None
    chosen_id = registered_weights_id(chosen)
    if chosen_id is not None:
        row = BackboneWeights.objects.filter(pk=chosen_id, sha256=spec.sha256).first()
    else:
        row = BackboneWeights.objects.filter(path=spec.path, sha256=spec.sha256).order_by("pk").first()
    return {
        "name": row.name if row else "",
        "architecture": row.architecture if row else "",
        "file": Path(spec.path).name,
        "sha256": spec.sha256,
    }
